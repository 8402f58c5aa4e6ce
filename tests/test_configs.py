"""Every shipped config loads, uses npdg's pieces and builds a working model."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.model import revert_sync_batchnorm

import npdg  # noqa: F401
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules
from npdg.utils.config import load_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_configs_found():
    names = {osp.relpath(p, ROOT) for p in CONFIGS}
    assert {'configs/npdg/deeplab_gta.py', 'configs/npdg/segformer_gta.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_loads_and_builds(path):
    register_all_modules()
    cfg = load_config(path)
    assert 'npdg' in cfg.custom_imports['imports']
    assert cfg.model.decode_head.num_classes == 19
    assert cfg.test_evaluator['type'] == 'MultiTargetIoUMetric'
    targets = list(cfg.test_dataloader.dataset.datasets.keys())
    assert targets == cfg.test_evaluator['targets']
    assert cfg.train_dataloader.dataset.type == 'GTA5Dataset'
    assert any(h['type'] == 'ModelComplexityHook' for h in cfg.custom_hooks)
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64) * 255, mode='tensor')
    assert out.shape[:2] == (1, 19)


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
                           ('segformer_mit-b5_gta.py', 'segformer_gta.py')]:
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
                 'demo/npdg_deeplab_r18_synthetic.py', 'demo/npdg_segformer_b0_synthetic.py'):
        cfg = load_config(osp.join(ROOT, 'configs', name))
        types = [h['type'] for h in cfg.custom_hooks]
        for needed in ('StylePerturbationHook', 'SensitivityStatisticsHook',
                       'SensitivitySparsityHook', 'UnitPruningHook', 'PrunedCheckpointHook'):
            assert needed in types, (name, needed)
        prune = next(h for h in cfg.custom_hooks if h['type'] == 'UnitPruningHook')
        assert prune['ratio'] == 0.3 and max(prune['prune_iters']) < cfg.train_cfg.max_iters
