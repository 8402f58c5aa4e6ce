"""Pruned checkpoints carry their structure: rebuild, strict load, export."""
import copy
import importlib.util
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch_pruning as tp
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.models.backbones.mit import EfficientMultiheadAttention
from mmseg.registry import MODELS

import npdg  # noqa: F401  (compat shims; must precede mmseg)
import npdg.hooks.pruned_checkpoint_hook  # noqa: F401  (registers the hook)
from npdg.engine.runner import NpdgRunner
from npdg.models import PerHeadEfficientAttention, convert_mit_attention, iter_head_units, remove_heads
from npdg.pruning import (
    STRUCTURE_KEY,
    add_structure,
    apply_structure,
    capture_structure,
    check_state_dict_matches,
    get_structure,
    load_pruned_checkpoint,
)
from npdg.utils.checkpoint_io import GUARD_KEY, PrunedCheckpointError, load_from_local
from npdg.utils.model import build_segmentor

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NORM = dict(type='BN', requires_grad=True)
PREPROCESSOR = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                    seg_pad_val=255, size=(32, 64))
LOSS = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
DEEPLAB = dict(
    type='EncoderDecoder', data_preprocessor=PREPROCESSOR,
    backbone=dict(type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                  dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=NORM,
                  norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(type='DepthwiseSeparableASPPHead', in_channels=512, in_index=3,
                     channels=64, dilations=(1, 6, 12, 18), c1_in_channels=64,
                     c1_channels=16, dropout_ratio=0.0, num_classes=19, norm_cfg=NORM,
                     align_corners=False, loss_decode=LOSS),
    auxiliary_head=dict(type='FCNHead', in_channels=256, in_index=2, channels=32,
                        num_convs=1, concat_input=False, dropout_ratio=0.0,
                        num_classes=19, norm_cfg=NORM, align_corners=False,
                        loss_decode=dict(LOSS, loss_weight=0.4)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
SEGFORMER = dict(
    type='EncoderDecoder', data_preprocessor=PREPROCESSOR,
    backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=32, num_stages=4,
                  num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3],
                  sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3), mlp_ratio=4,
                  qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1),
    decode_head=dict(type='SegformerHead', in_channels=[32, 64, 160, 256],
                     in_index=[0, 1, 2, 3], channels=64, dropout_ratio=0.0, num_classes=19,
                     norm_cfg=NORM, align_corners=False, loss_decode=LOSS),
    train_cfg=dict(), test_cfg=dict(mode='whole'))


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and never stall on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(cfg, seed=0):
    """Build a segmentor with random weights and random BN statistics."""
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model.eval()


class AllHeads(nn.Module):
    """Trace wrapper: backbone -> decode head AND auxiliary head."""

    def __init__(self, seg):
        super().__init__()
        self.seg = seg

    def forward(self, x):
        feats = self.seg.extract_feat(x)
        outs = [self.seg.decode_head(feats)]
        if getattr(self.seg, 'auxiliary_head', None) is not None:
            outs.append(self.seg.auxiliary_head(feats))
        return outs


def tp_prune(model, ignored, ratio=0.3, unwrapped=None):
    pruner = tp.pruner.MetaPruner(
        AllHeads(model), torch.randn(1, 3, 64, 64),
        importance=tp.importance.MagnitudeImportance(p=1), pruning_ratio=ratio,
        ignored_layers=ignored, unwrapped_parameters=unwrapped)
    pruner.step()
    return model


def outputs(model, seed=3):
    """Decode and auxiliary logits of the model in eval mode."""
    torch.manual_seed(seed)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        return AllHeads(model.eval())(x)


def assert_bit_exact(a, b):
    outs_a, outs_b = outputs(a), outputs(b)
    assert len(outs_a) == len(outs_b)
    for oa, ob in zip(outs_a, outs_b):
        assert torch.equal(oa, ob)


@pytest.fixture(scope='module')
def deeplab_pair():
    """(unpruned copy, pruned model) of the small DeepLabV3+."""
    model = build(DEEPLAB)
    original = copy.deepcopy(model)
    tp_prune(model, [model.decode_head.conv_seg, model.auxiliary_head.conv_seg])
    return original, model


@pytest.fixture(scope='module')
def segformer_pruned():
    """MiT-b0 SegFormer: heads removed, decode head channels pruned."""
    model = build(SEGFORMER)
    convert_mit_attention(model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, PerHeadEfficientAttention):
                m.head_gate.uniform_(0.5, 1.5)
    for _, module in list(iter_head_units(model)):
        remove_heads(module, [0] if module.num_heads < 5 else [1, 3])
    gates = [m.head_gate for m in model.modules() if isinstance(m, PerHeadEfficientAttention)]
    tp_prune(model, [model.backbone, model.decode_head.conv_seg] + gates,
             unwrapped=[(g, 0) for g in gates])
    return model


def saved_checkpoint(tmp_path, model, with_structure=True, name='pruned.pth'):
    """Save a runner-like checkpoint of ``model``; return its path."""
    ckpt = dict(meta=dict(dataset_meta=dict(classes=['c%d' % i for i in range(19)])),
                state_dict=model.state_dict(), message_hub=dict(log_scalars={}))
    if with_structure:
        add_structure(ckpt, model)
    path = str(tmp_path / name)
    torch.save(ckpt, path)
    return path


# --------------------------------------------------------------------------
# capture / apply / check
# --------------------------------------------------------------------------
def test_deeplab_pruned_round_trip_bit_exact(deeplab_pair, tmp_path):
    original, pruned = deeplab_pair
    changed_groups = [n for n, m in pruned.named_modules()
                      if isinstance(m, nn.Conv2d) and m.groups > 1
                      and m.groups != original.get_submodule(n).groups]
    assert 'decode_head.aspp_modules.1.depthwise_conv.conv' in changed_groups
    for name in changed_groups:
        m = pruned.get_submodule(name)
        assert m.groups == m.in_channels == m.out_channels == m.weight.shape[0]
    assert pruned.auxiliary_head.convs[0].conv.in_channels < 256  # aux input pruned too

    structure = capture_structure(pruned)
    # plain data only, and exactly the pruned state's shapes
    assert json.loads(json.dumps(structure)) == structure
    assert structure['shapes'] == {k: list(v.shape) for k, v in pruned.state_dict().items()}
    conv = pruned.decode_head.aspp_modules[1].depthwise_conv.conv
    assert structure['modules']['decode_head.aspp_modules.1.depthwise_conv.conv'] == dict(
        kind='conv', type='Conv2d', in_channels=conv.in_channels,
        out_channels=conv.out_channels, groups=conv.groups)
    assert conv.groups < 512

    path = saved_checkpoint(tmp_path, pruned)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)  # plain meta
    fresh = build(DEEPLAB, seed=5)
    change = apply_structure(fresh, get_structure(ckpt))
    assert change['converted'] == 0 and len(change['resized']) > 50
    fresh.load_state_dict(ckpt['state_dict'], strict=True)
    for name, m in pruned.named_modules():
        if isinstance(m, nn.Conv2d):
            f = fresh.get_submodule(name)
            assert (f.in_channels, f.out_channels, f.groups) == (
                m.in_channels, m.out_channels, m.groups), name
        if isinstance(m, nn.BatchNorm2d):
            assert fresh.get_submodule(name).num_features == m.num_features
    assert_bit_exact(fresh, pruned)


def test_apply_structure_again_changes_nothing(deeplab_pair):
    _, pruned = deeplab_pair
    model = copy.deepcopy(pruned)
    params = dict(model.named_parameters())
    change = apply_structure(model, capture_structure(model))
    assert change == dict(converted=0, resized={})
    assert all(p is params[n] for n, p in model.named_parameters())


def test_segformer_heads_and_head_channels_round_trip(segformer_pruned, tmp_path):
    pruned = segformer_pruned
    layout = {n: m.num_heads for n, m in pruned.named_modules()
              if isinstance(m, PerHeadEfficientAttention)}
    assert sorted(set(layout.values())) == [1, 3, 6]  # 1, 2-1, 5-2, 8-2
    assert pruned.decode_head.fusion_conv.bn.num_features < 64

    fresh = build(SEGFORMER, seed=7)
    assert any(isinstance(m, EfficientMultiheadAttention) for m in fresh.modules())
    ckpt = torch.load(saved_checkpoint(tmp_path, pruned), weights_only=True)
    change = apply_structure(fresh, get_structure(ckpt))
    assert change['converted'] == 8
    fresh.load_state_dict(ckpt['state_dict'], strict=True)
    assert {n: m.num_heads for n, m in fresh.named_modules()
            if isinstance(m, PerHeadEfficientAttention)} == layout
    for n, m in fresh.named_modules():
        if isinstance(m, PerHeadEfficientAttention):
            p = pruned.get_submodule(n)
            assert (m.head_dim, m.embed_dims, m.scale) == (p.head_dim, p.embed_dims, p.scale)
    assert_bit_exact(fresh, pruned)


class Tiny(nn.Module):
    """Every other layer kind the structure records, at a given width."""

    def __init__(self, width, heads):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.gn = nn.GroupNorm(heads, width)
        self.up = nn.ConvTranspose2d(width, width, 2, stride=2, groups=heads)
        self.inorm = nn.InstanceNorm2d(width, affine=True)
        self.ln = nn.LayerNorm(width)
        self.mha = nn.MultiheadAttention(width, heads)
        self.fc = nn.Linear(width, 5)
        self.pos = nn.Parameter(torch.zeros(1, width))

    def forward(self, x):
        x = self.inorm(self.up(self.gn(self.conv(x))))
        t = self.ln(x.flatten(2).permute(2, 0, 1) + self.pos)
        return self.fc(self.mha(t, t, t)[0])


def test_other_layer_kinds_round_trip():
    torch.manual_seed(0)
    small = Tiny(12, 3)
    for p in small.parameters():
        nn.init.normal_(p, 0, 0.3)
    big = Tiny(16, 4)
    apply_structure(big, capture_structure(small))
    big.load_state_dict(small.state_dict(), strict=True)
    assert (big.gn.num_channels, big.gn.num_groups, big.up.groups) == (12, 3, 3)
    assert (big.mha.embed_dim, big.mha.num_heads, big.mha.head_dim) == (12, 3, 4)
    assert big.ln.normalized_shape == (12, ) and big.inorm.num_features == 12
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(big.eval()(x), small.eval()(x))


def test_apply_structure_errors_name_module_and_sizes(deeplab_pair, segformer_pruned):
    _, pruned = deeplab_pair
    structure = capture_structure(pruned)
    bad = copy.deepcopy(structure)
    bad['modules']['decode_head.extra'] = dict(kind='conv', type='Conv2d', in_channels=8,
                                               out_channels=4, groups=1)
    fresh = build(DEEPLAB)
    with pytest.raises(RuntimeError, match=r"'decode_head\.extra'.*out_channels=4"):
        apply_structure(fresh, bad)
    bad = copy.deepcopy(structure)
    bad['modules']['decode_head.conv_seg'] = dict(kind='linear', type='Linear',
                                                  in_features=4, out_features=2)
    with pytest.raises(RuntimeError, match=r"'decode_head\.conv_seg'.*Conv2d"):
        apply_structure(fresh, bad)
    # wrong config: 10 classes cannot hold a 19-class checkpoint
    ten = build(dict(DEEPLAB, decode_head=dict(DEEPLAB['decode_head'], num_classes=10)))
    with pytest.raises(RuntimeError, match=r"decode_head\.conv_seg\.weight.*\[19, .*\[10, "):
        apply_structure(ten, structure)
    # SegFormer structure into a DeepLab model
    pattern = r"'backbone\.layers\.0\.0\.projection'.*out_channels=32.*no module"
    with pytest.raises(RuntimeError, match=pattern):
        apply_structure(fresh, capture_structure(segformer_pruned))
    # errors are raised before anything is changed
    assert capture_structure(fresh) == capture_structure(build(DEEPLAB))


def test_check_state_dict_matches_lists_every_mismatch(deeplab_pair):
    original, pruned = deeplab_pair
    state = pruned.state_dict()
    n_diff = sum(state[k].shape != v.shape for k, v in original.state_dict().items())
    with pytest.raises(RuntimeError) as err:
        check_state_dict_matches(original, state, has_structure=False)
    msg = str(err.value)
    assert f'{n_diff} shape mismatch(es)' in msg and 'carries no structure' in msg
    key = 'decode_head.aspp_modules.1.depthwise_conv.conv.weight'
    assert f'{key}: {list(state[key].shape)} vs [512, 1, 3, 3]' in msg
    # a checkpoint dict with DDP-style keys, unpruned: fine
    ok = {'state_dict': {'module.' + k: v for k, v in original.state_dict().items()}}
    check_state_dict_matches(original, ok)
    # missing/unexpected keys only matter when strict
    partial = dict(original.state_dict())
    partial.pop('decode_head.conv_seg.bias')
    partial.pop('backbone.layer1.0.bn1.num_batches_tracked')  # ignored like mmengine
    partial['extra.weight'] = torch.zeros(1)
    with pytest.raises(RuntimeError, match=r'(?s)Missing.*conv_seg\.bias.*Unexpected.*extra'):
        check_state_dict_matches(original, partial)
    check_state_dict_matches(original, partial, strict=False)
    # wrong config (ResNet-50 weights into ResNet-18)
    with pytest.raises(RuntimeError, match="own config"):
        r50 = build(dict(DEEPLAB, backbone=dict(DEEPLAB['backbone'], depth=50)))
        check_state_dict_matches(original, r50.state_dict())


def test_build_segmentor_applies_structure(deeplab_pair, tmp_path):
    original, pruned = deeplab_pair
    cfg = Config(dict(model=DEEPLAB))
    model = build_segmentor(cfg, saved_checkpoint(tmp_path, pruned))
    assert model.dataset_meta['classes'][3] == 'c3'
    assert_bit_exact(model, pruned)
    no_structure = saved_checkpoint(tmp_path, pruned, with_structure=False, name='bare.pth')
    with pytest.raises(RuntimeError, match='depthwise_conv.conv.weight'):
        build_segmentor(cfg, no_structure)


# --------------------------------------------------------------------------
# Runner: hook in test (load_from) and train (resume with optimizer state)
# --------------------------------------------------------------------------
def make_cityscapes(root, num=2):
    """Tiny Cityscapes layout: 64x128 images and train-id labels."""
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        img_dir = osp.join(root, 'leftImg8bit', split, 'city')
        gt_dir = osp.join(root, 'gtFine', split, 'city')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(gt_dir, exist_ok=True)
        for i in range(num):
            stem = f'city_{i:06d}_000019'
            cv2.imwrite(osp.join(img_dir, stem + '_leftImg8bit.png'),
                        rng.integers(0, 256, (64, 128, 3), dtype=np.uint8))
            label = rng.integers(0, 19, (64, 128), dtype=np.uint8)
            label[:8] = 255
            cv2.imwrite(osp.join(gt_dir, stem + '_gtFine_labelTrainIds.png'), label)
    return root


def dataloader(root, split, train=False):
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')]
    if train:  # deterministic and small: 32x64 crops cost a quarter
        pipeline.insert(2, dict(type='Resize', scale=(64, 32), keep_ratio=False))
    sampler = (dict(type='InfiniteSampler', shuffle=False) if train
               else dict(type='DefaultSampler', shuffle=False))
    return dict(batch_size=2 if train else 1, num_workers=0, persistent_workers=False,
                sampler=sampler,
                dataset=dict(type='CityscapesDataset', data_root=str(root),
                             data_prefix=dict(img_path=f'leftImg8bit/{split}',
                                              seg_map_path=f'gtFine/{split}'),
                             pipeline=pipeline))


def test_config(root, work_dir, name, **extra):
    cfg = dict(
        model=copy.deepcopy(DEEPLAB), work_dir=str(work_dir), default_scope='mmseg',
        experiment_name=name, log_level='WARNING',
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
        test_dataloader=dataloader(root, 'val'), test_cfg=dict(type='TestLoop'),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        custom_hooks=[dict(type='PrunedCheckpointHook')])
    cfg.update(extra)
    return cfg


test_config.__test__ = False  # a helper, not a test


def train_config(root, work_dir, name, max_iters, **extra):
    return test_config(
        root, work_dir, name, train_dataloader=dataloader(root, 'train', train=True),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                                          weight_decay=5e-4)),
        param_scheduler=[dict(type='PolyLR', power=0.9, eta_min=1e-4, begin=0,
                              end=max_iters, by_epoch=False)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                           interval=2)),
        randomness=dict(seed=0), **extra)


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    return make_cityscapes(str(tmp_path_factory.mktemp('cityscapes')))


def test_runner_test_loop_loads_pruned_checkpoint(deeplab_pair, cityscapes, tmp_path):
    _, pruned = deeplab_pair
    path = saved_checkpoint(tmp_path, pruned)
    runner = NpdgRunner.from_cfg(Config(test_config(cityscapes, tmp_path / 'w', 'structure_t1',
                                                load_from=path)))
    metrics = runner.test()
    assert 0 <= metrics['mIoU'] <= 100
    state = runner.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in pruned.state_dict().items())
    assert len(state) == len(pruned.state_dict())

    bare = saved_checkpoint(tmp_path, pruned, with_structure=False, name='bare.pth')
    runner = NpdgRunner.from_cfg(Config(test_config(cityscapes, tmp_path / 'w2', 'structure_t2',
                                                load_from=bare)))
    with pytest.raises(RuntimeError, match=r'carries no structure(?s:.*)depthwise_conv'):
        runner.test()


@pytest.fixture(scope='module')
def run_a(deeplab_pair, cityscapes, tmp_path_factory):
    """Train the pruned model 4 iterations (SGD momentum), saving at 2 and 4."""
    _, pruned = deeplab_pair
    work = tmp_path_factory.mktemp('run_a')
    model_a = copy.deepcopy(pruned).train()
    model_a._is_init = True  # keep the pruned weights (no init_weights)
    cfg_a = train_config(cityscapes, work, 'structure_a', 4)
    cfg_a.pop('model')
    runner_a = Runner(model=model_a, **cfg_a)
    runner_a.train()
    return dict(iter2=str(work / 'iter_2.pth'), iter4=str(work / 'iter_4.pth'),
                lr=runner_a.optim_wrapper.get_lr()['lr'])


@pytest.fixture
def single_process_group(monkeypatch):
    """A gloo process group of one rank, so the Runner wraps in MMDDP."""
    import socket

    import torch.distributed as dist
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv('LOCAL_RANK', '0')
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize('ddp', [False, True])
def test_resume_pruned_checkpoint_with_momentum(deeplab_pair, cityscapes, run_a, ddp,
                                                tmp_path, request):
    _, pruned = deeplab_pair
    ckpt2 = load_from_local(str(run_a['iter2']))
    assert get_structure(ckpt2)['shapes'] == capture_structure(pruned)['shapes']
    momenta = [s['momentum_buffer'] for s in ckpt2['optimizer']['state'].values()]
    assert len(momenta) == len(list(pruned.parameters()))
    assert all(m.abs().sum() > 0 for m in momenta[:5])

    # run B: fresh unpruned model from the config, resumed from iter 2
    extra = {}
    if ddp:
        request.getfixturevalue('single_process_group')
        extra = dict(launcher='pytorch',
                     model_wrapper_cfg=dict(type='MMDistributedDataParallel', device_ids=None))
    cfg_b = train_config(cityscapes, tmp_path / 'b', f'structure_b{int(ddp)}', 4,
                         load_from=run_a['iter2'], resume=True, **extra)
    runner_b = NpdgRunner.from_cfg(Config(cfg_b))
    wrapper = runner_b.model
    runner_b.train()
    assert runner_b.iter == 4
    model_b = runner_b.model.module if ddp else runner_b.model
    if ddp:  # re-wrapped: the old reducer held the unpruned parameters
        assert runner_b.model is not wrapper
        assert type(runner_b.model).__name__ == 'MMDistributedDataParallel'
    in_opt = {id(p) for g in runner_b.optim_wrapper.optimizer.param_groups for p in g['params']}
    assert in_opt == {id(p) for p in model_b.parameters()}
    # bit-exact the weights of the uninterrupted run: momentum and LR were restored
    final_a = load_from_local(str(run_a['iter4']))['state_dict']
    for key, value in model_b.state_dict().items():
        assert torch.equal(value, final_a[key]), key
    assert runner_b.optim_wrapper.get_lr()['lr'] == run_a['lr']


def test_train_from_pruned_segformer_converts_and_rebuilds_optimizer(
        segformer_pruned, cityscapes, tmp_path):
    """load_from a per-head, pruned checkpoint into mmseg's packed MiT config."""
    path = saved_checkpoint(tmp_path, segformer_pruned)
    cfg = train_config(cityscapes, tmp_path / 'w', 'structure_seg', 1, load_from=path,
                       model=copy.deepcopy(SEGFORMER))
    runner = NpdgRunner.from_cfg(Config(cfg))
    runner.train()
    model = runner.model
    assert not any(isinstance(m, EfficientMultiheadAttention) for m in model.modules())
    in_opt = [p for g in runner.optim_wrapper.optimizer.param_groups for p in g['params']]
    assert {id(p) for p in in_opt} == {id(p) for p in model.parameters()}
    assert runner.param_schedulers[0].optimizer is runner.optim_wrapper
    before = segformer_pruned.state_dict()
    after = model.state_dict()
    assert {k: v.shape for k, v in after.items()} == {k: v.shape for k, v in before.items()}
    key = 'backbone.layers.1.1.0.attn.q.weight'  # a pruned attention, trained one step
    assert after[key].shape[0] == 32 and not torch.equal(after[key], before[key])


# --------------------------------------------------------------------------
# export tool
# --------------------------------------------------------------------------
def load_export_tool():
    spec = importlib.util.spec_from_file_location(
        'export_pruned', osp.join(ROOT, 'tools', 'export_pruned.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_round_trip_and_stock_mmseg_test(deeplab_pair, cityscapes, tmp_path):
    _, pruned = deeplab_pair
    cfg = test_config(cityscapes, tmp_path / 'w', 'structure_export')
    cfg['custom_hooks'] = [dict(type='ModelComplexityHook', input_shape=(3, 64, 128)),
                           dict(type='RNGStateHook')]
    cfg['model']['backbone']['init_cfg'] = dict(type='Pretrained', checkpoint='x.pth')
    cfg_path = str(tmp_path / 'tiny_deeplab.py')
    Config(cfg).dump(cfg_path)
    ckpt = dict(meta=dict(dataset_meta=dict(classes=['c%d' % i for i in range(19)]),
                          cfg='...', iter=8), state_dict=pruned.state_dict(),
                optimizer=dict(state={}), message_hub=dict())
    add_structure(ckpt, pruned)
    torch.save(ckpt, tmp_path / 'iter_8.pth')
    out = tmp_path / 'out'
    load_export_tool().main([cfg_path, str(tmp_path / 'iter_8.pth'), '--out', str(out)])
    slim_path = out / 'tiny_deeplab_iter_8_slim.pth'
    cfg_out = out / 'tiny_deeplab_iter_8_config.py'

    # a tool that never imported npdg: torch's safe loader refuses it, loudly
    with pytest.raises(pickle.UnpicklingError, match='npdg'):
        torch.load(slim_path, weights_only=True)
    # ... and so does full unpickling outside npdg's loader
    with pytest.raises(PrunedCheckpointError, match="custom_imports"):
        torch.load(slim_path, weights_only=False)
    slim = load_from_local(str(slim_path))  # npdg wrote it: trusted
    assert set(slim) == {'meta', 'state_dict', GUARD_KEY}
    assert 'structure' in slim['meta']['npdg'] and slim['meta']['iter'] == 8
    assert STRUCTURE_KEY not in slim['meta'] and 'statistics' not in slim['meta']['npdg']
    assert 'cfg' not in slim['meta'] and slim['meta']['dataset_meta']['classes'][0] == 'c0'
    exported = Config.fromfile(str(cfg_out))
    assert [h['type'] for h in exported.custom_hooks] == ['ModelComplexityHook',
                                                          'PrunedCheckpointHook']
    assert 'npdg' in exported.custom_imports['imports']
    assert exported.model.backbone.init_cfg is None

    exported.load_from = str(slim_path)
    exported.work_dir = str(tmp_path / 'w_export')
    exported.experiment_name = 'structure_export_runner'
    runner = NpdgRunner.from_cfg(exported)
    runner.load_or_resume()
    state = runner.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in pruned.state_dict().items())

    import mmseg
    tool = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
    proc = subprocess.run([sys.executable, tool, str(cfg_out), str(slim_path),
                           '--cfg-options', 'log_level=INFO'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'mIoU' in log and 'applied the checkpoint' in log


def test_load_pruned_checkpoint_strict_false_still_checks_shapes(deeplab_pair, tmp_path):
    original, pruned = deeplab_pair
    bare = saved_checkpoint(tmp_path, pruned, with_structure=False)
    with pytest.raises(RuntimeError, match='shape mismatch'):
        load_pruned_checkpoint(copy.deepcopy(original), bare, strict=False)
