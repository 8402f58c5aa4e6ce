"""Every shipped config loads, uses npdg's pieces and builds a working model."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.model import revert_sync_batchnorm
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import npdg  # noqa: F401
from npdg.pruning.units import unit_scales
from npdg.utils.config import load_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_configs_found():
    names = {osp.relpath(p, ROOT) for p in CONFIGS}
    assert {'configs/npdg/deeplab_gta.py', 'configs/npdg/segformer_gta.py'} <= names


#: Source datasets of the DG configs and the target each one would be.
SOURCES = {'GTA5Dataset': None, 'CityscapesDataset': 'cityscapes', 'SynthiaDataset': None}


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_loads_and_builds(path):
    register_all_modules()
    cfg = load_config(path)
    assert 'npdg' in cfg.custom_imports['imports']
    assert cfg.model.decode_head.num_classes == 19
    assert cfg.test_evaluator['type'] == 'MultiTargetIoUMetric'
    targets = list(cfg.test_dataloader.dataset.datasets.keys())
    assert targets == cfg.test_evaluator['targets']
    train = cfg.train_dataloader.dataset
    oracle = osp.basename(path).startswith('oracle_')
    if oracle:  # trains on the target's own train split, tests on its val split
        target = osp.splitext(osp.basename(path))[0][len('oracle_'):]
        test = cfg.test_dataloader.dataset.datasets[target]
        assert train.type == test.type and train.data_root == test.data_root
        assert 'train' in train.data_prefix['img_path']
        assert 'train' not in str(test.get('data_prefix', 'validation/images'))
    else:
        assert train.type in SOURCES
        # a real source is never one of its own targets (Cityscapes -> BDD100K, Mapillary)
        assert SOURCES[train.type] not in targets
        if train.type == 'CityscapesDataset':
            assert train.data_prefix['img_path'] == 'leftImg8bit/train'
    assert any(h['type'] == 'ModelComplexityHook' for h in cfg.custom_hooks)
    zero, shape = _build_once(json.dumps(cfg.model.to_dict() if hasattr(cfg.model, 'to_dict')
                                         else cfg.model, sort_keys=True, default=str),
                              _sparse_from_init(cfg))
    # Sparse training from this config's own initialisation: no unit scale may start
    # at exactly 0 (the proximal shrink would keep it there: dead branches the
    # baseline does not have, e.g. mmseg's zero_init_residual).
    assert not zero, f'{osp.relpath(path, ROOT)}: unit scales at exactly 0 at init: {zero}'
    assert shape[:2] == (1, 19)


_BUILT = {}


def _build_once(model_json, check_init):
    """Build a model config once per session (controls share their recipe's model).

    Returns:
        tuple: ``{scale: zeros}`` of unit scales at exactly 0 after ``init_weights``
        (checked only when ``check_init``) and the output shape on a 64x64 image.
    """
    key = (model_json, check_init)
    if key not in _BUILT:
        model = revert_sync_batchnorm(MODELS.build(ConfigDict(json.loads(model_json)))).eval()
        zero = {}
        if check_init:
            model.init_weights()
            zero = {n: int((p == 0).sum()) for n, p in unit_scales(model).items()
                    if int((p == 0).sum())}
        with torch.no_grad():
            out = model(torch.rand(1, 3, 64, 64) * 255, mode='tensor')
        _BUILT[key] = (zero, tuple(out.shape))
    return _BUILT[key]


def _sparse_from_init(cfg):
    """Whether sparse training starts from the config's own (random) initialisation."""
    sparse = any(h.get('type') == 'SensitivitySparsityHook' for h in cfg.get('custom_hooks', []))
    backbone = cfg.model.get('backbone', {})
    pretrained = cfg.model.get('pretrained') or cfg.get('load_from') or \
        (backbone.get('init_cfg') or {}).get('type') == 'Pretrained'
    return sparse and not pretrained


def test_zero_init_residual_trap_is_detected():
    """The check above fails on mmseg's default ResNet (zero-initialised residual BNs)."""
    register_all_modules()
    cfg = load_config(osp.join(ROOT, 'configs', 'demo', 'npdg_deeplab_r18_synthetic.py'))
    assert _sparse_from_init(cfg)
    cfg.model.backbone.zero_init_residual = True
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    assert sum(int((p == 0).sum()) for p in unit_scales(model).values()) > 0


def test_dg_configs_evaluate_three_targets():
    for name in ('npdg/deeplab_gta.py', 'npdg/segformer_gta.py'):
        cfg = load_config(osp.join(ROOT, 'configs', name))
        assert cfg.test_evaluator['targets'] == ['cityscapes', 'bdd100k', 'mapillary']
        assert cfg.train_cfg.max_iters == 40000
        assert cfg.model.data_preprocessor.size == (512, 512)
        datasets = cfg.test_dataloader.dataset.datasets
        assert datasets.mapillary.mapping == 'narrow'
        assert not any(t['type'] == 'Resize' for t in datasets.mapillary.pipeline)


def test_baselines_share_the_npdg_recipe():
    for base, npdg_cfg in [('deeplabv3plus_r50-d8_gta.py', 'deeplab_gta.py'),
                           ('segformer_mit-b5_gta.py', 'segformer_gta.py'),
                           ('deeplabv3plus_r50-d8_cityscapes.py', 'deeplab_cityscapes.py'),
                           ('deeplabv3plus_r101-d8_gta.py', 'deeplab_r101_gta.py'),
                           ('deeplabv3plus_r50-d8_synthia.py', 'deeplab_synthia.py')]:
        a = load_config(osp.join(ROOT, 'configs', 'baselines', base))
        b = load_config(osp.join(ROOT, 'configs', 'npdg', npdg_cfg))
        for key in ('model', 'train_dataloader', 'optim_wrapper', 'param_scheduler',
                    'train_cfg', 'test_dataloader'):
            assert a[key] == b[key], key


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_hooks_build(path):
    """Every custom hook builds; DSP without weights names the missing file."""
    from mmseg.registry import HOOKS
    cfg = load_config(path)
    for hook in cfg.custom_hooks:
        perturbation = hook.get('perturbation') or {}
        if perturbation.get('type') == 'DSP':
            with pytest.raises(FileNotFoundError, match='checkpoints/dsp/'):
                HOOKS.build(hook)
        else:
            HOOKS.build(hook)


def test_npdg_configs_carry_the_method():
    for name in ('npdg/deeplab_gta.py', 'npdg/segformer_gta.py', 'npdg/deeplab_gta_advstyle.py',
                 'npdg/deeplab_cityscapes.py', 'npdg/deeplab_r101_gta.py',
                 'npdg/deeplab_synthia.py',
                 'demo/npdg_deeplab_r18_synthetic.py', 'demo/npdg_segformer_b0_synthetic.py'):
        cfg = load_config(osp.join(ROOT, 'configs', name))
        types = [h['type'] for h in cfg.custom_hooks]
        for needed in ('StylePerturbationHook', 'SensitivityStatisticsHook',
                       'SensitivitySparsityHook', 'UnitPruningHook', 'PrunedCheckpointHook'):
            assert needed in types, (name, needed)
        prune = next(h for h in cfg.custom_hooks if h['type'] == 'UnitPruningHook')
        assert prune['ratio'] == 0.3 and max(prune['prune_iters']) < cfg.train_cfg.max_iters


# ------------------------------------------------------------------ protocol
RECIPES = {  # recipe: (NPDG config, source-only control)
    'deeplab_gta': ('configs/npdg/deeplab_gta.py', 'configs/baselines/deeplabv3plus_r50-d8_gta.py'),
    'segformer_gta': ('configs/npdg/segformer_gta.py',
                      'configs/baselines/segformer_mit-b5_gta.py'),
    'demo_r18': ('configs/demo/npdg_deeplab_r18_synthetic.py',
                 'configs/demo/deeplab_r18_synthetic.py'),
    'bench_r18h': ('configs/bench/npdg.py', 'configs/bench/source_only.py'),
    'bench_effl0': ('configs/bench_effl0/npdg.py', 'configs/bench_effl0/source_only.py'),
}
# Recipes whose budgets come from the study registry (npdg/apis/studies.py) as options,
# not from *_flops50 files.
BUDGETS_AS_OPTIONS = {'bench_effl0'}
# What runs besides the hooks: a control must match its NPDG config in all of it.
RECIPE_KEYS = ('model', 'train_dataloader', 'val_dataloader', 'test_dataloader',
               'val_evaluator', 'test_evaluator', 'optim_wrapper', 'param_scheduler',
               'train_cfg', 'val_cfg', 'test_cfg', 'default_hooks', 'randomness', 'env_cfg',
               'load_from')


def _hooks(cfg):
    return {h['type']: dict(h) for h in cfg.custom_hooks}


# Criterion arms: no statistics, no sparse training, only the importance changes.
CRITERION_ARMS = dict(
    l1=dict(type='L1Importance', normalizer='mean'),
    l2=dict(type='L2Importance', normalizer='mean'),
    random=dict(type='RandomImportance'),
    taylor=dict(type='TaylorImportance', normalizer='mean'),
    hessian=dict(type='HessianImportance', normalizer='mean'),
    dss=dict(type='DSSImportance'),
    risk_variance=dict(type='DomainRiskVarianceImportance', beta=1.0, num_domains=3,
                       normalizer='mean'),
    npdg_by_w=dict(type='SensitivityImportance'),
)


def _expected_hooks(npdg_hooks, arm):
    """The control's hooks, derived from the NPDG config's by what the arm claims."""
    h = {k: dict(v) for k, v in npdg_hooks.items()}
    keep = lambda *types: {t: h[t] for t in types}  # noqa: E731
    base = arm.replace('_flops50', '')
    if base == 'source_only':
        out = keep('ModelComplexityHook')
    elif base == 'perturb_only':
        out = keep('ModelComplexityHook', 'StylePerturbationHook', 'PrunedCheckpointHook')
    elif base == 'npdg':
        out = h
    elif base == 'npdg_lam1':  # w = U only
        out = h
        out['SensitivityStatisticsHook']['lam'] = 1.0
    elif base in ('npdg_s0', 'npdg_s001'):  # the sparsity term weakened or off
        out = h
        out['SensitivitySparsityHook']['s'] = 0.0 if base == 'npdg_s0' else 0.01
    elif base == 'l1_source':  # bar (d): plain L1 at 0.75x FLOPs, no perturbation
        out = keep('ModelComplexityHook', 'UnitPruningHook', 'PrunedCheckpointHook')
        out['UnitPruningHook'].update(importance=CRITERION_ARMS['l1'], ratio=None,
                                      target_flops_ratio=0.75)
    elif base == 'slimming':
        out = keep('ModelComplexityHook', 'StylePerturbationHook', 'SensitivitySparsityHook',
                   'UnitPruningHook', 'PrunedCheckpointHook')
        out['SensitivitySparsityHook']['reweight'] = False
    elif base.startswith('adasap_'):  # the criterion's arm + AdaSAP's step, same importance
        out = _expected_hooks(npdg_hooks, base[len('adasap_'):])
        out['AdaSAPHook'] = dict(type='AdaSAPHook',
                                 importance=out['UnitPruningHook']['importance'],
                                 rho_min=0.01, rho_max=2.0, rho=1.0, normalization='global',
                                 score_interval=10,
                                 trace_shape=out['UnitPruningHook']['trace_shape'])
    elif base in CRITERION_ARMS:
        hooks = ['ModelComplexityHook', 'StylePerturbationHook', 'UnitPruningHook',
                 'PrunedCheckpointHook']
        if base == 'npdg_by_w':  # the statistics choose; no sparse training
            hooks.insert(2, 'SensitivityStatisticsHook')
        out = keep(*hooks)
        out['UnitPruningHook']['importance'] = CRITERION_ARMS[base]
        if base == 'dss':  # per layer, three geometric steps ending at the same iteration
            last = out['UnitPruningHook']['prune_iters'][-1]
            out['UnitPruningHook'].update(scope='layer', schedule='geometric',
                                          prune_iters=[last * 3 // 5, last * 4 // 5, last])
    else:
        raise AssertionError(arm)
    if arm.endswith('_flops50'):
        out['UnitPruningHook'].update(ratio=None, target_flops_ratio=0.5)
    # a recipe whose fine-tune is distilled (bench_effl0) distils in every arm that prunes
    distil = h.get('DistillationHook')
    if distil is not None:
        out.pop('DistillationHook', None)
        if 'UnitPruningHook' in out:
            out['DistillationHook'] = distil
    return out


def _arms():
    for recipe, (npdg_cfg, source_only) in RECIPES.items():
        yield recipe, 'source_only', source_only
        for path in sorted(glob.glob(osp.join(ROOT, 'configs', 'controls', recipe, '*.py'))):
            yield recipe, osp.splitext(osp.basename(path))[0], osp.relpath(path, ROOT)


@pytest.mark.parametrize('recipe,arm,path', list(_arms()), ids=lambda v: str(v))
def test_control_differs_from_npdg_only_in_what_it_claims(recipe, arm, path):
    npdg_cfg = load_config(osp.join(ROOT, RECIPES[recipe][0]))
    control = load_config(osp.join(ROOT, path))
    for key in RECIPE_KEYS:
        assert control.get(key) == npdg_cfg.get(key), key
    assert _hooks(control) == _expected_hooks(_hooks(npdg_cfg), arm)


def test_every_recipe_has_the_full_set_of_controls():
    for recipe in RECIPES:
        arms = {osp.splitext(osp.basename(p))[0]
                for p in glob.glob(osp.join(ROOT, 'configs', 'controls', recipe, '*.py'))}
        needed = {'perturb_only', 'slimming', 'l1'}
        if recipe not in BUDGETS_AS_OPTIONS:
            needed |= {'l2', 'npdg_flops50', 'slimming_flops50', 'l1_flops50', 'l2_flops50'}
        assert needed <= arms, (recipe, needed - arms)
        # every further arm is a criterion arm the claims test knows
        assert {a.replace('_flops50', '').replace('adasap_', '') for a in arms} <= {
            'perturb_only', 'slimming', 'npdg', 'npdg_lam1', 'npdg_s0', 'npdg_s001', 'l1_source',
            *CRITERION_ARMS}


def _dataset_ids(loader):
    """(type, data_root, split) of every dataset a dataloader reads."""
    if not loader:
        return set()
    ds = loader['dataset']
    parts = ds['datasets'].values() if ds['type'] == 'MultiTargetDataset' else [ds]
    return {(d['type'], d.get('data_root'), d.get('split_file'),
             str(d.get('data_prefix'))) for d in parts}


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_no_config_selects_on_the_targets(path):
    """Validation is on held-out source data only, and no 'best' checkpoint is kept."""
    cfg = load_config(path)
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    assert not checkpoint.get('save_best'), 'report the last iteration'
    val, test = _dataset_ids(cfg.get('val_dataloader')), _dataset_ids(cfg.test_dataloader)
    assert val and not val & test, (val, test)
    # validation reads the training source (oracles: the recipe's GTA5 source)
    train = cfg.train_dataloader.dataset
    source = ('GTA5Dataset', ) if osp.basename(path).startswith('oracle_') else (
        train['type'], train.get('data_root'))
    assert all(t[:len(source)] == source for t in val), (val, source)


def test_run_cache_key_follows_config_content_and_code(monkeypatch):
    from npdg.apis import experiment
    path = osp.join(ROOT, 'configs', 'demo', 'npdg_deeplab_r18_synthetic.py')
    key = experiment.run_key(load_config(path))
    assert key == experiment.run_key(load_config(path))  # stable
    assert key != experiment.run_key(load_config(path, {'randomness.seed': 1}))
    assert key != experiment.run_key(load_config(path, {'prune_ratio': 0.4}))
    monkeypatch.setattr(experiment, 'code_version', lambda: 'other code')
    assert key != experiment.run_key(load_config(path))


def test_run_seed_reaches_style_draws_and_statistics_sampling():
    """randomness.seed varies every source of randomness, the hooks' draws included."""
    from mmseg.registry import HOOKS

    class _Runner:
        def __init__(self, seed):
            self.seed, self.model = seed, torch.nn.Conv2d(3, 3, 1)

    draws = []
    for seed in (3, 4):
        style = HOOKS.build(dict(type='StylePerturbationHook'))
        style.before_run(_Runner(seed))
        assert style.seed == seed
        draws.append(torch.rand(4, generator=style.generator(10)))
    assert not torch.equal(draws[0], draws[1])
    stats = HOOKS.build(dict(type='SensitivityStatisticsHook'))
    assert stats.seed is None  # resolved from the run at before_run


def test_retarget_data_root_moves_whole_path_components_only():
    from mmengine.config import Config

    from npdg.apis.experiment import retarget_data_root
    cfg = Config(dict(a='data/synthetic/gta', b=['data/synthetic_bench/gta', 'data/synthetic'],
                      c=dict(d='data/synthetically')))
    retarget_data_root(cfg, '/tmp/x')
    assert cfg.a == '/tmp/x/gta' and cfg.b == ['data/synthetic_bench/gta', '/tmp/x']
    assert cfg.c.d == 'data/synthetically'
