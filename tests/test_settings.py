"""Config settings really override: --cfg-options, child configs, unread keys."""
import copy
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmseg.registry import HOOKS

import npdg  # noqa: F401
from npdg.utils.config import load_config
from npdg.utils.settings import SettingsError, check_top_level_keys, find_references, resolve_settings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)
NPDG_DEMO = osp.join(ROOT, 'configs', 'demo', 'npdg_deeplab_r18_synthetic.py')

# Every documented knob of the NPDG demo, and the attribute of the built hook
# that must carry an overridden value (an independent expectation, not the
# resolver's own bookkeeping).
HOOK_SETTINGS = {
    'prune_ratio': ('UnitPruningHook', lambda h: h.ratio, 0.45),
    'prune_iters': ('UnitPruningHook', lambda h: h.prune_iters, [300, 600]),
    'threshold': ('UnitPruningHook', lambda h: h.pruner.threshold, 0.05),
    'lam': ('SensitivityStatisticsHook', lambda h: h.lam, 1.0),
    'num_styles': ('SensitivityStatisticsHook', lambda h: h.num_styles, 3),
    'stats_interval': ('SensitivityStatisticsHook', lambda h: h.interval, 25),
    'sparsity': ('SensitivitySparsityHook', lambda h: h.s, 1e-2),
    'stylized_ratio': ('StylePerturbationHook', lambda h: h.stylized_ratio, 0.25),
    'ascent_steps': ('StylePerturbationHook', lambda h: h.ascent_steps, 2),
}
# Recipe knobs of the demo and where the Runner reads them.
RECIPE_SETTINGS = {
    'max_iters': (1600, ['train_cfg.max_iters', 'param_scheduler.0.end']),
    'lr': (0.05, ['optim_wrapper.optimizer.lr']),
    'batch_size': (4, ['train_dataloader.batch_size']),
    'crop_size': ((64, 64), ['model.data_preprocessor.size',
                             'train_dataloader.dataset.pipeline.4.crop_size']),
}


def _get(cfg, path):
    node = cfg
    for part in path.split('.'):
        node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
    return node


def _hook(cfg, hook_type):
    hook_cfg = next(h for h in cfg.custom_hooks if h['type'] == hook_type)
    return HOOKS.build(copy.deepcopy(hook_cfg))


def _perturbed(value, k=1):
    """A different value of the same kind; ``k`` keeps the values of different settings apart."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + k
    if isinstance(value, float):
        return value * 0.5 + 0.01 * k
    if isinstance(value, (list, tuple)):
        items = [_perturbed(v, k) for v in value]
        return None if any(v is None for v in items) else type(value)(items)  # e.g. pipelines
    if value is None:
        return 0.05 + 0.001 * k
    if isinstance(value, str):
        return value + f'_x{k}'
    return None


def _same(got, value):
    return (list(got) if isinstance(got, tuple) else got) == \
        (list(value) if isinstance(value, tuple) else value)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_every_referenced_setting_is_overridable(path):
    """Every '${name}' in a shipped config follows its top-level value.

    All of the config's scalar settings are overridden at once, each to its own
    new value, and one resolution is checked at every place that references
    them: a reference left unresolved, resolved to the old value, or wired to
    another setting fails here (dict settings - hooks, perturbation - have their
    own tests).
    """
    raw = Config.fromfile(path)
    refs = find_references(raw)
    values = {}
    for k, name in enumerate(sorted(refs), start=1):
        value = _perturbed(raw[name], k)
        if value is not None:
            values[name] = value
    if not values:
        pytest.skip('no scalar settings referenced')
    cfg = load_config(path, values)
    for name, value in values.items():
        assert refs[name], name
        assert _same(cfg[name], value), name
        for where in refs[name]:
            got = _get(cfg, where)
            try:
                template = _get(raw, where)
            except (KeyError, IndexError, TypeError, ValueError):
                template = None  # the path lies inside another referenced setting
            ref = '${' + name + '}'
            if isinstance(template, str) and template != ref and ref in template:
                # inside a string, e.g. '${syn_root}/gta' (other references resolved too)
                for other, v in values.items():
                    template = template.replace('${' + other + '}', str(v))
                assert got == template, (name, where)
                continue
            assert _same(got, value), (name, where)


def test_child_config_setting_reaches_inherited_hooks(tmp_path):
    child = tmp_path / 'child.py'
    child.write_text(f"_base_ = ['{NPDG_DEMO}']\nprune_ratio = 0.5\nlam = 0.9\n")
    cfg = load_config(str(child))
    assert _hook(cfg, 'UnitPruningHook').ratio == 0.5
    assert _hook(cfg, 'SensitivityStatisticsHook').lam == 0.9


def test_advstyle_configs_swap_only_the_perturbation():
    for name in ('deeplab', 'segformer'):
        dsp = load_config(osp.join(ROOT, 'configs', 'npdg', f'{name}_gta.py'))
        adv = load_config(osp.join(ROOT, 'configs', 'npdg', f'{name}_gta_advstyle.py'))
        style = [h for h in adv.custom_hooks if h['type'] == 'StylePerturbationHook']
        assert style[0]['perturbation'] == dict(type='AdvStyle')
        assert dsp.perturbation['type'] == 'DSP'
        strip = [h for h in adv.custom_hooks if h['type'] != 'StylePerturbationHook']
        assert strip == [h for h in dsp.custom_hooks if h['type'] != 'StylePerturbationHook']


def test_override_nothing_reads_is_an_error_with_a_suggestion():
    with pytest.raises(SettingsError, match=r"prune_ratoi.*Did you mean: prune_ratio"):
        load_config(NPDG_DEMO, {'prune_ratoi': 0.5})
    # a plain variable copied at parse time: names the places that use it
    with pytest.raises(SettingsError, match=r"syn_targets.*test_dataloader\.dataset\.datasets"):
        load_config(NPDG_DEMO, {'syn_targets.cityscapes.data_root': 'x'})
    # the baseline has no pruning hook: nothing reads prune_ratio there
    with pytest.raises(SettingsError, match="'prune_ratio'"):
        load_config(osp.join(ROOT, 'configs', 'demo', 'deeplab_r18_synthetic.py'),
                    {'prune_ratio': 0.5})


@pytest.mark.parametrize('key,meant', [('custom_hook', 'custom_hooks'),
                                       ('default_hook', 'default_hooks'),
                                       ('optim_wraper', 'optim_wrapper'),
                                       ('resume_from', 'resume=True'),
                                       ('lr_config', 'param_scheduler')])
def test_near_miss_top_level_key_is_an_error(tmp_path, key, meant):
    bad = tmp_path / 'bad.py'
    bad.write_text(f"_base_ = ['{NPDG_DEMO}']\n{key} = []\n")
    with pytest.raises(SettingsError, match=rf"{key}.*{meant}"):
        load_config(str(bad))


def test_dangling_reference_names_the_key():
    cfg = Config(dict(model=dict(size='${crop_sise}'), crop_size=(1, 2)))
    with pytest.raises(SettingsError, match=r"'model\.size'.*crop_sise.*crop_size"):
        resolve_settings(cfg)


def test_shipped_configs_have_no_near_miss_keys():
    for path in CONFIGS:
        check_top_level_keys(Config.fromfile(path), source=path)


def test_stock_tools_build_the_npdg_runner_which_resolves_settings(tmp_path):
    """mmseg's own tools: Config.fromfile + merge + RUNNERS.build (the config names
    runner_type='NpdgRunner'), mmengine's Runner class untouched."""
    from mmengine.registry import RUNNERS

    from npdg.engine.runner import NpdgRunner
    cfg = Config.fromfile(NPDG_DEMO)
    assert cfg.runner_type == 'NpdgRunner'
    cfg.merge_from_dict({'prune_ratio': 0.5})
    cfg.work_dir = str(tmp_path)
    runner = RUNNERS.build(cfg)
    assert type(runner) is NpdgRunner
    hook = next(h for h in runner.hooks if type(h).__name__ == 'UnitPruningHook')
    assert hook.ratio == 0.5
    assert runner.cfg.custom_hooks[-2]['ratio'] == 0.5


def test_cli_override_changes_the_run_and_is_recorded(npdg_demo_run):
    """tools/train.py --cfg-options prune_ratio=0.5 lam=1.0 prunes half; w == U."""
    work = npdg_demo_run
    report = json.load(open(work / 'pruning' / 'pruning_report.json'))
    step = report['steps'][0]
    assert step['removed'] == int(0.5 * step['total'])  # not the file's 0.3
    assert report['settings']['ratio'] == 0.5
    assert report['config_settings']['lam'] == 1.0
    assert report['config_settings']['prune_ratio'] == 0.5
    channel = [layer for layer in step['layers'] if 'w' in layer and layer['w']]
    assert channel
    for layer in channel:  # lam = 1: w is the unary term alone
        assert layer['w'] == pytest.approx(layer['unary'], abs=1e-9)
    dumped = Config.fromfile(str(work / osp.basename(NPDG_DEMO)))
    pruning = [h for h in dumped.custom_hooks if h['type'] == 'UnitPruningHook']
    assert pruning[0]['ratio'] == 0.5 and dumped.prune_ratio == 0.5


def test_cli_unread_override_fails_before_training(workspace):
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), NPDG_DEMO, '--work-dir',
         str(workspace / 'typo'), '--cfg-options', 'prune_ration=0.5'],
        cwd=workspace, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'prune_ration' in proc.stderr and 'prune_ratio' in proc.stderr
    assert not (workspace / 'typo').exists()


def test_shared_overrides_go_to_the_arms_that_read_them():
    """The demo (and comparisons) share one --cfg-options among several configs."""
    from npdg.utils.settings import split_overrides
    base = osp.join(ROOT, 'configs', 'demo', 'deeplab_r18_synthetic.py')
    out = split_overrides(dict(baseline=base, npdg=NPDG_DEMO),
                          {'max_iters': 60, 'prune_ratio': 0.5})
    assert out == dict(baseline={'max_iters': 60},
                       npdg={'max_iters': 60, 'prune_ratio': 0.5})
    with pytest.raises(SettingsError, match='prune_ratoi'):
        split_overrides(dict(baseline=base, npdg=NPDG_DEMO), {'prune_ratoi': 0.5})


def test_override_through_a_reference_names_the_setting_to_override():
    with pytest.raises(SettingsError, match=r"custom_hooks\.4 is the reference '\$\{pruning_hook\}'"
                                            r".*pruning_hook\.flops_shape"):
        load_config(NPDG_DEMO, {'custom_hooks.4.flops_shape': [3, 64, 64]})
    cfg = load_config(NPDG_DEMO, {'pruning_hook.flops_shape': [3, 64, 64]})
    assert _hook(cfg, 'UnitPruningHook').flops_shape == (3, 64, 64)
