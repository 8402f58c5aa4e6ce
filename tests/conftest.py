"""Shared fixtures: small mmseg segmentors built from config dicts."""
import os

import pytest
import torch

import npdg  # noqa: F401

# One thread per test process (the small models gain nothing from more; four
# modules used to set it at import, which changed the whole session anyway).
torch.set_num_threads(1)
if os.environ.get('PYTEST_XDIST_WORKER'):
    # ``pytest -n 2`` (README's test command): the subprocess trainings a worker
    # starts inherit one thread too; two workers of two threads each would
    # thrash OpenMP on a 2-core machine.
    os.environ['OMP_NUM_THREADS'] = '1'


@pytest.fixture(autouse=True, scope='session')
def _configs_dumped_without_yapf():
    """Test-process speed-up: mmengine's config text skips its yapf pass.

    ``Config.pretty_text`` (logged and dumped by every Runner, four times per
    build) spends about 3.5 s per runner in yapf on this machine, a third of a
    short in-process training. The text is the same Python, only unformatted;
    subprocess runs of the tools (and users) keep the real formatting. This
    changes mmengine inside the test process only, never on ``import npdg``.
    """
    from mmengine.config import config as mm_config
    real = mm_config.FormatCode
    mm_config.FormatCode = lambda text, **kwargs: (text, False)
    yield
    mm_config.FormatCode = real

NORM = dict(type='BN', requires_grad=True)
PRE = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
           size=(64, 64))


def deeplab_r18_cfg(channels=32):
    """A small DeepLabV3+ R18 (OS16) with an auxiliary FCN head."""
    return dict(
        type='EncoderDecoder', data_preprocessor=PRE,
        backbone=dict(type='ResNetV1c', depth=18, out_indices=(0, 1, 2, 3),
                      dilations=(1, 1, 1, 2), strides=(1, 2, 2, 1), norm_cfg=NORM,
                      contract_dilation=True),
        decode_head=dict(type='DepthwiseSeparableASPPHead', in_channels=512, in_index=3,
                         channels=channels, dilations=(1, 6, 12, 18), c1_in_channels=64,
                         c1_channels=8, num_classes=19, norm_cfg=NORM,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        auxiliary_head=dict(type='FCNHead', in_channels=256, in_index=2, channels=16,
                            num_convs=1, concat_input=False, num_classes=19, norm_cfg=NORM,
                            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def segformer_b0_cfg():
    """A small SegFormer (MiT-b0 widths, 1 block per stage)."""
    return dict(
        type='EncoderDecoder', data_preprocessor=PRE,
        backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=32,
                      num_stages=4, num_layers=[1, 1, 1, 1], num_heads=[1, 2, 5, 8],
                      patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
                      out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True),
        decode_head=dict(type='SegformerHead', in_channels=[32, 64, 160, 256],
                         in_index=[0, 1, 2, 3], channels=32, num_classes=19, norm_cfg=NORM,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


class TinyNet(torch.nn.Module):
    """conv(3 -> 4, 1x1) + BN: four unit scales, for optimizer-level tests."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(x))


def build(cfg):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    return MODELS.build(cfg)


@pytest.fixture
def deeplab():
    return build(deeplab_r18_cfg())


@pytest.fixture
def segformer():
    from npdg.models import convert_mit_attention
    model = build(segformer_b0_cfg())
    convert_mit_attention(model)
    return model


def register_random_dataset():
    """A disk-free dataset of random images with blocky labels (already packed)."""
    from mmengine.dataset import BaseDataset
    from mmengine.structures import PixelData
    from mmseg.registry import DATASETS
    from mmseg.structures import SegDataSample

    if 'RandomSegDataset' in DATASETS.module_dict:
        return

    @DATASETS.register_module()
    class RandomSegDataset(BaseDataset):
        METAINFO = dict(classes=tuple(f'c{i}' for i in range(19)),
                        palette=[[i * 10, i * 5, i] for i in range(19)])

        def __init__(self, length=16, size=64, seed=0, **kwargs):
            self.length, self.size, self.seed = length, size, seed
            super().__init__(serialize_data=False, **kwargs)

        def load_data_list(self):
            return [dict(idx=i) for i in range(self.length)]

        def prepare_data(self, idx):
            g = torch.Generator().manual_seed(self.seed * 1000 + idx)
            s = self.size
            label = torch.randint(0, 19, (1, s // 8, s // 8), generator=g)
            label = label.repeat_interleave(8, 1).repeat_interleave(8, 2)
            img = (label.float() * 12 + torch.rand(3, s, s, generator=g) * 30).clamp(0, 255)
            sample = SegDataSample()
            sample.gt_sem_seg = PixelData(data=label)
            sample.set_metainfo(dict(img_shape=(s, s), ori_shape=(s, s), pad_shape=(s, s),
                                     img_path=f'rand_{idx}.png', seg_map_path=f'rand_{idx}.png'))
            return dict(inputs=img.to(torch.uint8), data_samples=sample)


def runner_cfg(work_dir, model, max_iters=6, custom_hooks=(), lr=0.01, checkpoint_interval=3,
               optimizer=None, seed=0):
    """A small, fast iteration-based training config on RandomSegDataset."""
    from mmengine.config import Config
    register_random_dataset()
    return Config(dict(
        default_scope='mmseg', work_dir=str(work_dir), model=model,
        train_dataloader=dict(batch_size=2, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=True),
                              dataset=dict(type='RandomSegDataset', length=16)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10 ** 6),
        optim_wrapper=dict(type='OptimWrapper', optimizer=optimizer or dict(
            type='SGD', lr=lr, momentum=0.9, weight_decay=5e-4)),
        param_scheduler=[dict(type='PolyLR', power=0.9, eta_min=1e-4, begin=0, end=max_iters,
                              by_epoch=False)],
        default_hooks=dict(timer=dict(type='IterTimerHook'),
                           logger=dict(type='LoggerHook', interval=1),
                           param_scheduler=dict(type='ParamSchedulerHook'),
                           checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                           interval=checkpoint_interval)),
        custom_hooks=list(custom_hooks), randomness=dict(seed=seed),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
        log_processor=dict(by_epoch=False), log_level='WARNING'))


TINY = dict(gta=16, cityscapes=dict(train=0, val=3), bdd100k=dict(train=0, val=3),
            mapillary=dict(training=0, validation=3))


@pytest.fixture(scope='session')
def workspace(tmp_path_factory):
    """A folder whose data/synthetic is made and converted like the real data."""
    from npdg.apis.synthetic_data import prepare_synthetic_domains
    root = tmp_path_factory.mktemp('ws')
    prepare_synthetic_domains(str(root / 'data' / 'synthetic'), seed=1, nproc=1,
                              num_images=TINY, gta_size_mismatches=1)
    return root


@pytest.fixture(scope='session')
def npdg_demo_run(workspace):
    """tools/train.py on the NPDG demo config, 3 iterations, pruned after 2.

    The NPDG settings are overridden from the command line (prune_ratio=0.5,
    lam=1.0, ...), as a user sweeping them would. Returns the work dir
    (``iter_3.pth`` is the pruned checkpoint).
    """
    import os.path as osp
    import subprocess
    import sys
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    work = workspace / 'npdg_demo_run'
    proc = subprocess.run(
        [sys.executable, osp.join(root, 'tools', 'train.py'),
         osp.join(root, 'configs', 'demo', 'npdg_deeplab_r18_synthetic.py'),
         '--work-dir', str(work),
         '--cfg-options', 'prune_ratio=0.5', 'lam=1.0', 'prune_iters=[2]', 'max_iters=3',
         'stats_interval=1', 'stats_batches=1', 'batch_size=2', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
         'test_dataloader.num_workers=0', 'default_hooks.checkpoint.interval=3',
         'complexity_hook.input_shape=[3,64,64]', 'pruning_hook.flops_shape=[3,64,64]',
         'train_cfg.val_interval=100'],
        cwd=workspace, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work
