"""Tests for npdg.pruning.optimizer_sync: training goes on after a prune."""
import contextlib
import copy
import os
import socket
import time
import warnings

import pytest
import torch
import torch.nn as nn
import torch_pruning as tp
from mmengine.model import ExponentialMovingAverage, MMDistributedDataParallel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import MODEL_WRAPPERS

import npdg  # noqa: F401  (shims before mmseg)
from npdg.engine.rebuild import rebuild_after_prune
from npdg.models import PerHeadEfficientAttention, head_channels, remove_heads
from npdg.pruning.optimizer_sync import (
    PruningRecorder,
    apply_kept,
    infer_kept_indices,
    kept_shape,
    merge_kept,
    normalize_kept,
    prefix_kept,
    rebuild_averaged_model,
    snapshot_params,
    sync_optimizer,
)

K8 = [0, 2, 3, 5, 6, 7]            # conv1 group: channels 1 and 4 removed
K12 = [1, 2, 3, 4, 6, 7, 8, 9, 10]  # conv2 group: channels 0, 5, 11 removed


class Net(nn.Module):
    """conv-bn-relu x3 with a depthwise conv and a residual add, + head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 12, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(12)
        self.dw = nn.Conv2d(12, 12, 3, padding=1, groups=12, bias=False)
        self.bn3 = nn.BatchNorm2d(12)
        self.conv4 = nn.Conv2d(12, 8, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x1 = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(x1)))
        y = torch.relu(self.bn3(self.dw(y)))
        y = self.bn4(self.conv4(y))
        return self.head(torch.relu(y + x1))


# name -> expected [(dim, kept)] of the two group prunes in _prune_net
EXPECTED = {
    'conv1.weight': [(0, K8)], 'bn1.weight': [(0, K8)],
    'bn1.bias': [(0, K8)], 'conv2.weight': [(1, K8), (0, K12)],
    'bn4.weight': [(0, K8)], 'bn4.bias': [(0, K8)],
    'head.weight': [(1, K8)], 'conv4.weight': [(0, K8), (1, K12)],
    'bn2.weight': [(0, K12)], 'bn2.bias': [(0, K12)],
    'dw.weight': [(0, K12)], 'bn3.weight': [(0, K12)],
    'bn3.bias': [(0, K12)],
}


def _manual_slice(name, tensor):
    """Slice an old-shaped tensor with plain indexing (test reference)."""
    for dim, idx in EXPECTED.get(name, []):
        tensor = tensor[(slice(None),) * dim + (torch.tensor(idx),)]
    return tensor


def _loss(net, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 6, 6, generator=g)
    target = torch.randn(2, 4, 6, 6, generator=g)
    return ((net(x) - target) ** 2).mean()


def _train(net, optimizer, steps, seed=0):
    for i in range(steps):
        optimizer.zero_grad()
        _loss(net, seed + i).backward()
        optimizer.step()


def _prune_net(net, first_group=True):
    """Prune the two groups of Net on fixed indices, recorded."""
    graph = tp.DependencyGraph().build_dependency(
        net, example_inputs=torch.randn(1, 3, 6, 6))
    with PruningRecorder(net) as rec:
        if first_group:
            graph.get_pruning_group(net.conv1, tp.prune_conv_out_channels,
                                    idxs=[1, 4]).prune()
        graph.get_pruning_group(net.conv2, tp.prune_conv_out_channels,
                                idxs=[0, 5, 11]).prune()
    return rec


def _as_lists(kept):
    return {k: [(d, i.tolist()) for d, i in v] for k, v in kept.items()}


def _state_by_name(optimizer, net):
    names = {p: n for n, p in net.named_parameters()}
    return {names[p]: {k: v.clone() if torch.is_tensor(v) else v
                       for k, v in s.items()}
            for p, s in optimizer.state.items()}


def _group_params(optimizer):
    return [id(p) for g in optimizer.param_groups for p in g['params']]


def _ids(params):
    return [id(p) for p in params]


# ---------------------------------------------------------------- recorder
def test_recorder_composes_group_prunes_exactly():
    torch.manual_seed(0)
    net = Net()
    original = tp.pruner.function.BasePruningFunc.__dict__[
        '_prune_parameter_and_grad']
    before = snapshot_params(net)
    rec = _prune_net(net)
    assert tp.pruner.function.BasePruningFunc.__dict__[
        '_prune_parameter_and_grad'] is original  # patch removed
    assert _as_lists(rec.kept) == EXPECTED
    assert all(rec.old_params[n] is p for n, p in before.items())
    for name, param in net.named_parameters():
        old = rec.old_params[name]
        assert torch.equal(param, _manual_slice(name, old)), name
        if name not in EXPECTED:
            assert param is old
    assert net(torch.randn(1, 3, 6, 6)).shape == (1, 4, 6, 6)


def test_recorder_with_pruner_step_interactive():
    torch.manual_seed(1)
    net = Net()
    pruner = tp.pruner.MagnitudePruner(
        net, torch.randn(1, 3, 6, 6),
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=0.5, ignored_layers=[net.head])
    with PruningRecorder(net) as rec:
        for group in pruner.step(interactive=True):
            group.prune()
    changed = {n for n, p in net.named_parameters()
               if p is not rec.old_params[n]}
    assert changed == set(rec.kept) == set(EXPECTED)
    for name, steps in rec.kept.items():
        old = rec.old_params[name]
        assert torch.equal(dict(net.named_parameters())[name],
                           apply_kept(old, steps))
    assert net.conv2.out_channels == 6 and net.conv1.out_channels == 4


def test_recorder_infers_hand_slices_and_flags_ambiguous():
    torch.manual_seed(2)
    net = Net()
    net.gate = nn.Parameter(torch.ones(5))
    with pytest.warns(UserWarning, match="'gate' changed"), \
            PruningRecorder(net) as rec:
        net.head.bias = nn.Parameter(net.head.bias.data[[0, 2, 3]])
        net.gate = nn.Parameter(net.gate.data[[0, 1, 4]])
    assert _as_lists({'head.bias': rec.kept['head.bias']}) == {
        'head.bias': [(0, [0, 2, 3])]}
    assert rec.kept['gate'] is None  # all-ones: indices not recoverable
    with pytest.raises(RuntimeError, match='inside the with block'):
        rec.add('gate', 0, [0, 1, 4])


def test_infer_kept_indices():
    old = torch.randn(6, 4, 3)
    assert infer_kept_indices(old, old.clone()) == []
    (dim, idx), = infer_kept_indices(old, old[:, [0, 3]])
    assert dim == 1 and idx.tolist() == [0, 3]
    dup = old.clone()
    dup[4] = dup[1]
    assert infer_kept_indices(dup, dup[[1, 2]]) is None
    assert infer_kept_indices(dup, dup[[0, 2]])[0][1].tolist() == [0, 2]
    assert infer_kept_indices(old, old[[2, 1]]) is None  # not increasing
    assert infer_kept_indices(old, old[[1, 2]][:, [0]]) is None  # 2 dims
    assert infer_kept_indices(old, old[[1, 2]] + 1) is None


def test_kept_helpers():
    assert normalize_kept({'a': (0, [1, 2])})['a'][0][1].tolist() == [1, 2]
    assert list(prefix_kept('m.attn', {'q.weight': (0, [0])})) == [
        'm.attn.q.weight']
    merged = merge_kept({'a': (0, [0, 2, 3])}, {'a': [(0, [1])]},
                        {'b': None})
    assert apply_kept(torch.arange(4), merged['a']).tolist() == [2]
    assert merged['b'] is None
    assert kept_shape((4, 5), merged['a']) == (1, 5)
    with pytest.raises(ValueError, match='out of range'):
        kept_shape((2, 5), merged['a'])
    with pytest.raises(ValueError, match='expected \\(dim, kept_idx\\)'):
        normalize_kept({'a': [0, 1, 2]})


# --------------------------------------------------------------- optimizer
def test_sync_sgd_momentum_slices_buffers_and_steps_like_reference():
    torch.manual_seed(3)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9,
                          weight_decay=1e-3)
    _train(net, opt, 3)
    old_state = _state_by_name(opt, net)
    rec = _prune_net(net)
    stats = sync_optimizer(OptimWrapper(opt), net, rec.old_params, rec.kept)
    assert stats == dict(replaced=13, sliced=13, carried=0, reset=0,
                         removed=0)
    assert _group_params(opt) == _ids(net.parameters())
    assert opt.param_groups[0]['lr'] == 0.05
    new_state = _state_by_name(opt, net)
    assert set(new_state) == set(old_state)
    for name, state in new_state.items():
        expected = _manual_slice(name, old_state[name]['momentum_buffer'])
        assert torch.equal(state['momentum_buffer'], expected), name

    opt.zero_grad()
    _loss(net, 10).backward()
    reference = {}
    for name, p in net.named_parameters():
        buf = new_state[name]['momentum_buffer'] * 0.9 + (
            p.grad + 1e-3 * p.detach())
        reference[name] = p.detach() - 0.05 * buf
    opt.step()
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.detach(), reference[name])


def test_sync_adamw_amsgrad_matches_manually_sliced_reference():
    torch.manual_seed(4)
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, amsgrad=True)
    _train(net, opt, 3)
    old_state = _state_by_name(opt, net)
    rec = _prune_net(net)
    sync_optimizer(opt, net, rec.old_params, rec.kept)
    keys = ('exp_avg', 'exp_avg_sq', 'max_exp_avg_sq')
    for name, state in _state_by_name(opt, net).items():
        assert float(state['step']) == 3.0
        for key in keys:
            assert torch.equal(state[key],
                               _manual_slice(name, old_state[name][key]))

    ref_net = copy.deepcopy(net)
    ref_opt = torch.optim.AdamW(ref_net.parameters(), lr=1e-2, amsgrad=True)
    sliced = {}
    for i, (name, _) in enumerate(net.named_parameters()):
        sliced[i] = dict(step=old_state[name]['step'].clone(), **{
            k: _manual_slice(name, old_state[name][k]).clone()
            for k in keys})
    ref_opt.load_state_dict(dict(state=sliced,
                                 param_groups=ref_opt.state_dict()[
                                     'param_groups']))
    opt.zero_grad()
    _loss(net, 11).backward()
    for p, q in zip(net.parameters(), ref_net.parameters()):
        q.grad = p.grad.clone()
    opt.step()
    ref_opt.step()
    for p, q in zip(net.parameters(), ref_net.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_sync_drops_removed_params_keeps_groups_and_reset_option():
    torch.manual_seed(5)
    net = Net()
    head = list(net.head.parameters())
    body = [p for p in net.parameters() if all(p is not h for h in head)]
    opt = torch.optim.SGD([dict(params=body), dict(params=head, lr=0.5)],
                          lr=0.1, momentum=0.9)
    _train(net, opt, 2)
    old_state = _state_by_name(opt, net)
    rec = _prune_net(net, first_group=False)  # conv2 group only
    assert len(rec.kept) == 7
    del net.head  # the head is removed entirely
    stats = sync_optimizer(opt, net, rec.old_params, rec.kept,
                           reset_state=True)
    assert stats['removed'] == 2 and stats['reset'] == 7
    assert len(opt.param_groups) == 2 and opt.param_groups[1]['params'] == []
    assert opt.param_groups[1]['lr'] == 0.5
    assert _group_params(opt) == _ids(net.parameters())
    state = _state_by_name(opt, net)
    unchanged = [n for n, _ in net.named_parameters() if n not in rec.kept]
    assert len(unchanged) == 5 and set(state) == set(unchanged)
    for name in unchanged:
        assert torch.equal(state[name]['momentum_buffer'],
                           old_state[name]['momentum_buffer'])
    assert all(id(p) not in map(id, head) for p in opt.state)


def test_sync_rejects_wrong_kept_and_resets_unknown():
    torch.manual_seed(6)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    _train(net, opt, 1)
    old = snapshot_params(net)
    rec = _prune_net(net)
    bad = dict(rec.kept)
    bad['conv2.weight'] = bad['conv2.weight'][:1]
    groups_before = [list(g['params']) for g in opt.param_groups]
    with pytest.raises(ValueError, match="kept\\['conv2.weight'\\]"):
        sync_optimizer(opt, net, old, bad)
    assert [_ids(g['params']) for g in opt.param_groups] == [
        _ids(g) for g in groups_before]
    unknown = dict(rec.kept, **{'conv2.weight': None})
    with pytest.warns(UserWarning, match='unknown'):
        stats = sync_optimizer(opt, net, old, unknown)
    assert stats['reset'] == 1 and net.conv2.weight not in opt.state
    assert net.conv4.weight in opt.state
    _train(net, opt, 1)


def test_sync_accepts_remove_heads_output():
    torch.manual_seed(7)
    model = nn.Module()
    model.attn = PerHeadEfficientAttention(embed_dims=8, num_heads=4,
                                           qkv_bias=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(2, 4, 8)
    for _ in range(2):
        opt.zero_grad()
        model.attn(x, (2, 2)).square().mean().backward()
        opt.step()
    old_state = _state_by_name(opt, model)
    old = snapshot_params(model)
    kept = prefix_kept('attn', remove_heads(model.attn, [1]))
    sync_optimizer(opt, model, old, kept)
    rows = head_channels([0, 2, 3], 2).tolist()
    state = _state_by_name(opt, model)
    assert torch.equal(state['attn.q.weight']['exp_avg'],
                       old_state['attn.q.weight']['exp_avg'][rows])
    assert torch.equal(state['attn.proj.weight']['exp_avg_sq'],
                       old_state['attn.proj.weight']['exp_avg_sq'][:, rows])
    assert torch.equal(state['attn.head_gate']['exp_avg'],
                       old_state['attn.head_gate']['exp_avg'][[0, 2, 3]])
    assert torch.equal(state['attn.proj.bias']['exp_avg'],
                       old_state['attn.proj.bias']['exp_avg'])
    assert _group_params(opt) == _ids(model.parameters())
    opt.zero_grad()
    model.attn(x, (2, 2)).square().mean().backward()
    opt.step()


class TwoAttention(nn.Module):
    """Two stacked PerHeadEfficientAttention modules (4 heads of 4)."""

    def __init__(self):
        super().__init__()
        self.a = PerHeadEfficientAttention(16, 4, qkv_bias=True)
        self.b = PerHeadEfficientAttention(16, 4, qkv_bias=True)

    def forward(self, x):
        return self.b(self.a(x, (2, 2)), (2, 2))


@pytest.mark.parametrize('record_gate', [True, False])
def test_recorder_with_head_removal_outside_torch_pruning(record_gate):
    """Heads are removed by hand (remove_heads, as UnitPruner does): what the
    pruner reports is used; what it does not is recovered by exact slice
    matching, or marked unknown (its optimizer state dropped, with a warning)."""
    torch.manual_seed(10)
    model = TwoAttention()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randn(2, 4, 16)
    for _ in range(2):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    old_state = _state_by_name(opt, model)
    for m in (model.a, model.b):
        m.head_gate.data.fill_(1.0)  # untrained gates: not recoverable by matching
    removed = {'a': [0, 3], 'b': [1, 2]}
    expect = contextlib.nullcontext() if record_gate else pytest.warns(
        UserWarning, match="head_gate' changed from")
    with expect, PruningRecorder(model) as rec:
        for name, gone in removed.items():
            kept = remove_heads(getattr(model, name), gone)
            if record_gate:
                for pname, (dim, idx) in kept.items():
                    rec.add(f'{name}.{pname}', dim, idx)
    if not record_gate:
        assert rec.kept['a.head_gate'] is None
        with pytest.warns(UserWarning, match='unknown'):
            sync_optimizer(opt, model, rec.old_params, rec.kept)
        assert model.a.head_gate not in opt.state
        # the q/k/v rows were recovered by exact matching all the same
        assert torch.equal(rec.kept['a.q.weight'][0][1], head_channels([1, 2], 4))
        return
    sync_optimizer(opt, model, rec.old_params, rec.kept)
    state = _state_by_name(opt, model)
    for name, param in model.named_parameters():
        steps = rec.kept.get(name, [])
        assert torch.equal(param, apply_kept(rec.old_params[name], steps))
        assert torch.equal(state[name]['exp_avg_sq'],
                           apply_kept(old_state[name]['exp_avg_sq'], steps))
    rows = head_channels([1, 2], 4)
    assert torch.equal(rec.kept['a.q.weight'][0][1], rows)
    opt.zero_grad()
    model(x).square().mean().backward()
    opt.step()


def test_sync_optim_wrapper_dict():
    torch.manual_seed(8)
    net = Net()
    opt_a = torch.optim.SGD(net.head.parameters(), lr=0.1, momentum=0.9)
    rest = [p for n, p in net.named_parameters() if not n.startswith('head')]
    opt_b = torch.optim.SGD(rest, lr=0.1, momentum=0.9)
    _train(net, opt_a, 1)
    _train(net, opt_b, 1)
    rec = _prune_net(net)
    wrappers = OptimWrapperDict(a=OptimWrapper(opt_a), b=OptimWrapper(opt_b))
    stats = sync_optimizer(wrappers, net, rec.old_params, rec.kept)
    assert stats['sliced'] == 13
    assert _group_params(opt_a) == _ids(net.head.parameters())
    with pytest.raises(TypeError, match='OptimWrapper'):
        sync_optimizer(dict(type='SGD'), net, rec.old_params, rec.kept)


# --------------------------------------------------------------------- EMA
@pytest.mark.parametrize('update_buffers', [False, True])
def test_rebuild_averaged_model_carries_sliced_averages(update_buffers):
    torch.manual_seed(9)
    net = Net()
    ema = ExponentialMovingAverage(net, momentum=0.3,
                                   update_buffers=update_buffers)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for i in range(3):
        _train(net, opt, 1, seed=i)
        ema.update_parameters(net)
    old_avg = {k: v.clone() for k, v in ema.avg_parameters.items()}
    rec = _prune_net(net)
    carried = rebuild_averaged_model(ema, net, rec.kept)
    assert int(ema.steps) == 3
    assert [p.shape for p in ema.module.parameters()] == [
        p.shape for p in net.parameters()]
    for name, _ in net.named_parameters():
        assert torch.equal(ema.avg_parameters[name],
                           _manual_slice(name, old_avg[name]))
    if update_buffers:  # BN running stats changed shape: current values
        assert torch.equal(ema.module.bn2.running_mean, net.bn2.running_mean)
        assert torch.equal(ema.module.bn2.num_batches_tracked,
                           old_avg['bn2.num_batches_tracked'])
        assert carried == len(list(net.parameters())) + 4  # + 4 counters
    else:
        assert carried == len(list(net.parameters()))
    _train(net, opt, 1, seed=5)
    ema.update_parameters(net)
    expected = 0.7 * _manual_slice('conv2.weight', old_avg['conv2.weight']) \
        + 0.3 * net.conv2.weight.detach()
    torch.testing.assert_close(ema.module.conv2.weight, expected)


# ------------------------------------------------------------ mmseg runner
NORM = dict(type='BN', requires_grad=True)


def _deeplabv3plus_r18_cfg():
    """Small DeepLabV3+ (ResNetV1c-18 D8, thin heads) for 64x64 inputs."""
    loss = dict(type='CrossEntropyLoss', use_sigmoid=False,
                avg_non_ignore=True)
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
            seg_pad_val=255, size=(64, 64)),
        backbone=dict(
            type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=NORM,
            norm_eval=False, style='pytorch', contract_dilation=True),
        decode_head=dict(
            type='DepthwiseSeparableASPPHead', in_channels=512, in_index=3,
            channels=32, dilations=(1, 12, 24, 36), c1_in_channels=64,
            c1_channels=8, dropout_ratio=0.1, num_classes=19, norm_cfg=NORM,
            align_corners=False, loss_decode=dict(loss, loss_weight=1.0)),
        auxiliary_head=dict(
            type='FCNHead', in_channels=256, in_index=2, channels=16,
            num_convs=1, concat_input=False, dropout_ratio=0.1,
            num_classes=19, norm_cfg=NORM, align_corners=False,
            loss_decode=dict(loss, loss_weight=0.4)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


class RandomSegDataset(torch.utils.data.Dataset):
    """64x64 random images with random labels 0..18, made per index.

    As long as the whole run (batch 2 x 20 iterations): mmengine's infinite
    iterator sleeps 2 s each time the dataloader restarts.
    """

    def __len__(self):
        return 40

    def __getitem__(self, i):
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        g = torch.Generator().manual_seed(i)
        image = torch.randint(0, 256, (3, 64, 64), generator=g,
                              dtype=torch.uint8)
        label = torch.randint(0, 19, (1, 64, 64), generator=g)
        sample = SegDataSample(
            gt_sem_seg=PixelData(data=label),
            metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64)))
        return dict(inputs=image, data_samples=sample)


class SegTraceWrapper(nn.Module):
    """Runs backbone -> decode_head and auxiliary_head, for tracing."""

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x):
        feats = self.segmentor.extract_feat(x)
        return [self.segmentor.decode_head(feats),
                self.segmentor.auxiliary_head(feats)]


def _make_hooks():
    from mmengine.hooks import Hook

    class PruneAt(Hook):
        """Prune 30 % channels after iteration ``at`` and rebuild."""

        def __init__(self, at):
            self.at = at
            self.info = {}

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if runner.iter + 1 != self.at:
                return
            seg = runner.model
            pruner = tp.pruner.MagnitudePruner(
                SegTraceWrapper(seg), torch.randn(1, 3, 64, 64),
                importance=tp.importance.MagnitudeImportance(p=2),
                pruning_ratio=0.3,
                ignored_layers=[seg.decode_head.conv_seg,
                                seg.auxiliary_head.conv_seg])
            self.info['params_before'] = sum(p.numel()
                                             for p in seg.parameters())
            optimizer = runner.optim_wrapper.optimizer
            buffers = {n: optimizer.state[p]['momentum_buffer'].clone()
                       for n, p in seg.named_parameters()}
            with PruningRecorder(seg) as rec:
                for group in pruner.step(interactive=True):
                    group.prune()
            self.info['result'] = rebuild_after_prune(runner, rec.old_params,
                                                      rec.kept)
            params = dict(seg.named_parameters())
            self.info['exact_params'] = all(
                torch.equal(params[n], apply_kept(old, rec.kept.get(n, [])))
                for n, old in rec.old_params.items())
            self.info['exact_buffers'] = all(
                torch.equal(optimizer.state[params[n]]['momentum_buffer'],
                            apply_kept(buf, rec.kept.get(n, [])))
                for n, buf in buffers.items())
            self.info['concat_input_pruned'] = [
                d for d, _ in rec.kept['decode_head.bottleneck.conv.weight']]
            self.info['same_optimizer'] = \
                runner.optim_wrapper.optimizer is optimizer
            self.info['params_after'] = sum(p.numel()
                                            for p in seg.parameters())

    class Record(Hook):
        """LR used at every iteration, losses and momentum shapes."""

        priority = 'VERY_LOW'

        def __init__(self):
            self.lrs, self.losses, self.shapes_ok = [], [], []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.lrs.append(runner.optim_wrapper.get_lr()['lr'])

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            self.losses.append(float(outputs['loss']))
            opt = runner.optim_wrapper.optimizer
            self.shapes_ok.append(all(
                opt.state[p]['momentum_buffer'].shape == p.shape
                for g in opt.param_groups for p in g['params']))

    return PruneAt, Record


def _run_deeplab(tmp_path, name, hooks):
    from mmengine.dataset import pseudo_collate
    from mmengine.runner import Runner
    runner = Runner(
        model=_deeplabv3plus_r18_cfg(), work_dir=str(tmp_path / name),
        experiment_name=f'{name}_{time.time_ns()}',
        train_dataloader=torch.utils.data.DataLoader(
            RandomSegDataset(), batch_size=2, collate_fn=pseudo_collate),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=20),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(
            type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4)),
        param_scheduler=[dict(type='PolyLR', eta_min=1e-4, power=0.9,
                              begin=0, end=20, by_epoch=False)],
        default_hooks=dict(checkpoint=None,
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=hooks, default_scope='mmseg',
        randomness=dict(seed=0), log_level='ERROR')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        runner.train()
    return runner


def test_runner_prune_mid_training_keeps_poly_lr(tmp_path):
    """DeepLabV3+ R18, SGD + PolyLR, 30 % pruned after iteration 10 of 20.

    The LR used at every iteration equals an unpruned run's.
    """
    PruneAt, Record = _make_hooks()
    base = Record()
    _run_deeplab(tmp_path, 'base', [base])
    rec, prune = Record(), PruneAt(at=10)
    runner = _run_deeplab(tmp_path, 'pruned', [rec, prune])

    assert len(rec.lrs) == len(base.lrs) == 20
    assert rec.lrs == base.lrs  # every iteration, incl. 11..20 after prune
    assert rec.lrs[10][0] < rec.lrs[9][0] < rec.lrs[0][0] == 0.01
    info = prune.info
    assert info['params_after'] < 0.7 * info['params_before']
    assert info['params_after'] == sum(p.numel()
                                       for p in runner.model.parameters())
    assert info['same_optimizer'] and info['result']['rewrapped'] is False
    assert info['exact_params'] and info['exact_buffers']
    # the ASPP bottleneck loses outputs once and concat inputs once per
    # branch (image pool + 4 ASPP convs), composed in order
    assert sorted(info['concat_input_pruned']) == [0, 1, 1, 1, 1, 1]
    assert info['result']['optimizer']['sliced'] > 50
    assert all(rec.shapes_ok) and all(map(torch.isfinite,
                                          torch.tensor(rec.losses)))
    assert runner.param_schedulers[0].optimizer is runner.optim_wrapper


def test_runner_prune_with_ema_hook_finishes(tmp_path):
    from mmengine.hooks import EMAHook
    PruneAt, Record = _make_hooks()
    rec, prune = Record(), PruneAt(at=10)
    runner = _run_deeplab(tmp_path, 'ema', [
        rec, prune, dict(type='EMAHook', momentum=0.01)])
    assert len(rec.lrs) == 20 and all(rec.shapes_ok)
    ema_hook = [h for h in runner.hooks if isinstance(h, EMAHook)][0]
    assert prune.info['result']['ema'] == [
        len(list(runner.model.parameters()))]
    assert ema_hook.src_model is runner.model
    ema_params = list(ema_hook.ema_model.module.parameters())
    params = list(runner.model.parameters())
    assert [p.shape for p in ema_params] == [p.shape for p in params]
    assert int(ema_hook.ema_model.steps) == 20
    # an average of 20 states, not a fresh copy of the last one
    assert not all(torch.equal(a, p) for a, p in zip(ema_params, params))


# -------------------------------------------------------------------- DDP
@MODEL_WRAPPERS.register_module(force=True)
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """MMDDP for CPU tests: mmengine's wrap_model always passes device_ids,
    which torch's DDP refuses for CPU modules."""

    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module=module, **kwargs)


class _DDPRunnerStub:
    """The runner attributes rebuild_after_prune uses, with mmengine's real
    ``Runner.wrap_model``."""

    def __init__(self, module, optimizer):
        import logging

        from mmengine.config import Config
        from mmengine.runner import Runner
        self.wrap_model = Runner.wrap_model.__get__(self)
        self.distributed = True
        self.logger = logging.getLogger('ddp-stub')
        self.cfg = Config(dict(model_wrapper_cfg=dict(
            type='CPUDistributedDataParallel')))
        self.model = self.wrap_model(copy.deepcopy(
            self.cfg.model_wrapper_cfg), module)
        self.optim_wrapper = OptimWrapper(optimizer)
        self.hooks = []


def _ddp_step(runner, rank, seed):
    runner.optim_wrapper.zero_grad()
    loss = _loss(runner.model, seed + 100 * rank)  # different data per rank
    runner.optim_wrapper.update_params(loss)


def _ddp_worker(rank, port, out_dir):
    """One of two gloo ranks: train, prune identically, rebuild, train."""
    import torch.distributed as torch_dist
    from mmengine import dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      LOCAL_RANK=str(rank), RANK=str(rank), WORLD_SIZE='2')
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo', rank=rank, world_size=2)
    from npdg.engine import rebuild
    with pytest.raises(RuntimeError, match='pruned differently'):
        rebuild._check_same_structure_on_all_ranks(
            nn.Linear(2, 2 + rank))
    torch.manual_seed(0)
    net = Net()
    runner = _DDPRunnerStub(net, torch.optim.SGD(net.parameters(), lr=0.1,
                                                 momentum=0.9))
    old_wrapper = runner.model
    for i in range(2):
        _ddp_step(runner, rank, i)
    rec = _prune_net(net)
    result = rebuild_after_prune(runner, rec.old_params, rec.kept)
    assert result['rewrapped'] and runner.model is not old_wrapper
    assert isinstance(runner.model, CPUDistributedDataParallel)
    assert runner.model.module is net
    for i in range(2, 4):
        _ddp_step(runner, rank, i)
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    gathered = dist.all_gather(flat)
    assert torch.equal(gathered[0], gathered[1])  # gradients were reduced
    torch.save(flat, os.path.join(out_dir, f'rank{rank}.pt'))
    torch_dist.destroy_process_group()


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_ddp_rewrap_after_prune_two_gloo_ranks(tmp_path):
    import torch.multiprocessing as mp
    context = mp.start_processes(_ddp_worker,
                                 args=(_free_port(), str(tmp_path)),
                                 nprocs=2, join=False, start_method='spawn')
    deadline = time.time() + 120
    while not context.join(timeout=1):
        if time.time() > deadline:
            for proc in context.processes:
                proc.kill()
            pytest.fail('DDP workers did not finish within 120 s')
    flats = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    assert torch.equal(flats[0], flats[1])
    assert flats[0].numel() < sum(p.numel() for p in Net().parameters())
