"""Drop-in use with stock mmseg configs, and 2-process distributed training."""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

import npdg  # noqa: F401
from npdg.engine.runner import NpdgRunner
from npdg.utils.checkpoint_io import load_from_local

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

NPDG_HOOKS = """
custom_hooks = [
    dict(type='StylePerturbationHook', perturbation=dict(type='AdvStyle')),
    dict(type='SensitivityStatisticsHook', interval=2, num_images=2, num_styles=3,
         num_positions=32),
    dict(type='SensitivitySparsityHook', s=1e-3),
    dict(type='UnitPruningHook', prune_iters=[2], ratio=0.3, threshold=None,
         trace_shape=(3, 64, 64), flops_shape=(3, 64, 64)),
    dict(type='PrunedCheckpointHook'),
]
"""

DATASET_OVERRIDE = """
# --- dataset override: synthetic GTA5, small crops ---
train_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
    dict(type='RandomCrop', crop_size=(64, 64)), dict(type='PackSegInputs')]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(_delete_=True, type='GTA5Dataset',
                                     data_root='data/synthetic/gta', pipeline=train_pipeline))
model = dict(data_preprocessor=dict(size=(64, 64)))
val_dataloader = None
val_evaluator = None
val_cfg = None
train_cfg = dict(max_iters=3, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=3), logger=dict(interval=1))
"""

STOCK = {
    'deeplabv3plus': 'mmseg::deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'segformer': 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
}


def _fake_pretrained(folder):
    """Random stand-ins for the ImageNet weights the stock configs name."""
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    r18 = MODELS.build(dict(type='ResNetV1c', depth=18))
    torch.save(dict(state_dict=r18.state_dict()), folder / 'resnet18_v1c-b5776b93.pth')
    mit = MODELS.build(dict(type='MixVisionTransformer', embed_dims=32, num_layers=[2, 2, 2, 2],
                            num_heads=[1, 2, 5, 8]))
    torch.save(dict(state_dict=mit.state_dict()), folder / 'mit_b0_20220624-7e0fe6dd.pth')


@pytest.mark.parametrize('arch', sorted(STOCK))
def test_drop_in_stock_mmseg_config_trains_and_prunes(arch, workspace, tmp_path, monkeypatch):
    from mmengine.config import Config
    _fake_pretrained(tmp_path)
    monkeypatch.setenv('NPDG_PRETRAINED_DIR', str(tmp_path))
    monkeypatch.setenv('NPDG_OFFLINE', '1')
    monkeypatch.chdir(workspace)
    path = tmp_path / f'{arch}_npdg.py'
    path.write_text(f"_base_ = ['{STOCK[arch]}']\n"
                    "custom_imports = dict(imports=['npdg'], allow_failed_imports=False)\n"
                    + NPDG_HOOKS + DATASET_OVERRIDE)
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(tmp_path / 'work')
    runner = NpdgRunner.from_cfg(cfg)
    before = sum(p.numel() for p in runner.model.parameters())
    runner.train()
    after = sum(p.numel() for p in runner.model.parameters())
    assert after < before
    report = json.load(open(tmp_path / 'work' / 'pruning' / 'pruning_report.json'))
    assert report['steps'][0]['removed'] > 0
    if arch == 'segformer':
        # mmseg's packed attention was swapped for per-head attention: heads are units
        heads = [l for l in report['steps'][0]['layers'] if l['kind'] == 'head']
        assert sorted({l['units_before'] for l in heads}) == [2, 5, 8]
    ckpt = load_from_local(str(tmp_path / 'work' / 'iter_3.pth'))
    assert ckpt['meta']['npdg']['structure']['version'] == 1
    assert 'npdg_structure' not in ckpt['meta']  # one namespace (npdg.engine.ckpt_state)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_distributed_two_cpu_processes_prune_identically(workspace, tmp_path):
    work = tmp_path / 'dist'
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1', PYTHON=sys.executable)
    cfg = osp.join(ROOT, 'configs', 'demo', 'npdg_deeplab_r18_synthetic.py')
    opts = ['max_iters=4', 'batch_size=2',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1',
            'stats_interval=2', 'stats_batches=1', 'prune_iters=[2]', 'val_dataloader.num_workers=0',
            'test_dataloader.num_workers=0']
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg, '2',
                           '--work-dir', str(work), '--cfg-options', *opts],
                          cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert 'identical on 2 rank(s)' in log
    ckpt = work / 'iter_4.pth'
    assert ckpt.is_file()
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'test.py'), cfg, str(ckpt),
                          '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                          'test_dataloader.num_workers=0', 'complexity_hook.input_shape=[3,64,128]'],
                         cwd=workspace, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    metrics = json.load(open(glob.glob(str(tmp_path / 'test' / '*' / '*.json'))[0]))
    assert 'cityscapes/mIoU' in metrics and metrics['params_m'] > 0
