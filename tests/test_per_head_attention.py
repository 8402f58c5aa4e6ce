"""PerHeadEfficientAttention: conversion, gates, head removal, tp interplay."""
import copy
import math

import pytest
import torch
import torch.nn as nn
import torch_pruning as tp
from mmengine.registry import init_default_scope
from mmseg.models.backbones import MixVisionTransformer
from mmseg.models.backbones.mit import EfficientMultiheadAttention
from mmseg.registry import MODELS

import npdg  # noqa: F401  (compat shims; must precede mmseg)
from npdg.models import (
    PerHeadEfficientAttention,
    convert_mit_attention,
    from_efficient_attention,
    head_channels,
    head_layout,
    is_converted,
    iter_head_units,
    remove_heads,
    resize_heads_to_state_dict,
    resize_to_state_dict,
)

B0 = dict(embed_dims=32, num_heads=[1, 2, 5, 8], num_layers=[2, 2, 2, 2])
HW = (8, 6)


def make_mit(seed=0):
    """MiT-b0 backbone with its own init (trunc-normal linears etc.)."""
    torch.manual_seed(seed)
    model = MixVisionTransformer(**B0)
    for m in model.modules():  # MiT.init_weights without the log spam
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            nn.init.zeros_(m.bias)
    return model.eval()


def make_attention(sr_ratio=1, num_heads=4, embed_dims=64, seed=0, **kw):
    """A packed mmseg attention with non-trivial biases."""
    torch.manual_seed(seed)
    attn = EfficientMultiheadAttention(embed_dims, num_heads, qkv_bias=True,
                                       sr_ratio=sr_ratio, **kw)
    with torch.no_grad():
        attn.attn.in_proj_bias.normal_(0, 0.1)
        attn.attn.out_proj.bias.normal_(0, 0.1)
    return attn.eval()


def tokens(batch=2, dims=64, seed=1):
    torch.manual_seed(seed)
    return torch.randn(batch, HW[0] * HW[1], dims)


def per_head(seed=0, num_heads=4, sr_ratio=2, random_gates=True):
    module = from_efficient_attention(
        make_attention(sr_ratio, num_heads, seed=seed))
    if random_gates:
        with torch.no_grad():
            module.head_gate.uniform_(0.5, 1.5)
    return module


def brute_force(module, x, identity):
    """Loop-per-head float64 reference of the module's forward."""
    m = copy.deepcopy(module).double()
    x, identity = x.double(), identity.double()
    x_kv = m._reduce_kv(x, HW)
    d = m.head_dim
    outs = []
    for h in range(m.num_heads):
        rows = slice(h * d, (h + 1) * d)
        q = x @ m.q.weight[rows].T + m.q.bias[rows]
        k = x_kv @ m.k.weight[rows].T + m.k.bias[rows]
        v = x_kv @ m.v.weight[rows].T + m.v.bias[rows]
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1)
        gate = m.head_gate[h] if m.head_gate is not None else 1.
        outs.append(gate * (attn @ v))
    return identity + torch.cat(outs, -1) @ m.proj.weight.T + m.proj.bias


# ---------------------------------------------------------------- conversion
@pytest.mark.parametrize('sr_ratio', [1, 2])
@pytest.mark.parametrize('impl', ['sdpa', 'math'])
def test_single_module_equivalence(sr_ratio, impl):
    old = make_attention(sr_ratio)
    x, identity = tokens(), tokens(seed=5)
    new = from_efficient_attention(copy.deepcopy(old), attn_impl=impl)
    assert new.num_heads == 4 and new.head_dim == 16 and new.embed_dims == 64
    with torch.no_grad():
        assert (new(x, HW) - old(x, HW)).abs().max() < 1e-5
        assert (new(x, HW, identity) - old(x, HW, identity)).abs().max() < 1e-5
        old64, new64 = copy.deepcopy(old).double(), copy.deepcopy(new).double()
        diff = (new64(x.double(), HW) - old64(x.double(), HW)).abs().max()
    assert diff < 1e-12  # exact up to rounding


def test_batch_first_false_equivalence():
    old = make_attention(1, batch_first=False)
    new = from_efficient_attention(copy.deepcopy(old))
    x = tokens().transpose(0, 1)  # (L, B, C)
    with torch.no_grad():
        assert (new(x, HW) - old(x, HW)).abs().max() < 1e-5


def test_brute_force_reference():
    module = per_head(sr_ratio=2)
    x, identity = tokens(), tokens(seed=5)
    with torch.no_grad():
        ref = brute_force(module, x, identity)
        for impl in ('sdpa', 'math'):
            module.attn_impl = impl
            out = module(x, HW, identity).double()
            assert (out - ref).abs().max() < 1e-5


def test_conversion_copies_settings():
    old = make_attention(2, attn_drop=0.1, proj_drop=0.2,
                         dropout_layer=dict(type='DropPath', drop_prob=0.3))
    old.train()
    new = from_efficient_attention(old)
    assert new.training and new.attn_drop.p == 0.1 and new.proj_drop.p == 0.2
    assert new.dropout_layer.drop_prob == 0.3
    assert new.sr is old.sr and new.norm is old.norm
    assert torch.equal(new.head_gate, torch.ones(4))
    assert torch.equal(new.k.weight, old.attn.in_proj_weight[64:128])
    assert torch.equal(new.v.bias, old.attn.in_proj_bias[128:])
    assert torch.equal(new.proj.weight, old.attn.out_proj.weight)
    double = from_efficient_attention(make_attention(1).double())
    assert double.q.weight.dtype == torch.float64
    assert double.head_gate.dtype == torch.float64


@pytest.mark.parametrize('impl', ['sdpa', 'math'])
def test_backbone_equivalence(impl):
    model = make_mit()
    converted = copy.deepcopy(model)
    assert convert_mit_attention(converted, attn_impl=impl) == 8
    assert is_converted(converted) and not is_converted(model)
    assert convert_mit_attention(converted) == 0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for ref, out in zip(model(x), converted(x)):
            assert ref.shape == out.shape
            assert (ref - out).abs().max() < 1e-5
    attn = converted.layers[2][1][0].attn
    assert isinstance(attn, PerHeadEfficientAttention) and not attn.training
    assert (attn.num_heads, attn.head_dim, attn.sr_ratio) == (5, 32, 2)


def test_convert_refuses_bare_module():
    with pytest.raises(TypeError, match='from_efficient_attention'):
        convert_mit_attention(make_attention())


def test_registry_build():
    module = MODELS.build(dict(type='PerHeadEfficientAttention',
                               embed_dims=24, num_heads=3, sr_ratio=2))
    assert isinstance(module, PerHeadEfficientAttention)
    assert module.head_dim == 8 and module.scale == 8 ** -0.5
    with pytest.raises(ValueError, match='not divisible'):
        PerHeadEfficientAttention(embed_dims=24, num_heads=5)


# --------------------------------------------------------------------- gates
def test_gate_one_equals_no_gate():
    old = make_attention(2)
    gated = from_efficient_attention(copy.deepcopy(old), use_gate=True)
    plain = from_efficient_attention(copy.deepcopy(old), use_gate=False)
    assert plain.head_gate is None and 'head_gate' not in plain.state_dict()
    x = tokens()
    with torch.no_grad():
        assert torch.equal(gated(x, HW), plain(x, HW))


def test_gate_receives_gradient():
    module = per_head()
    module(tokens(), HW).square().sum().backward()
    assert module.head_gate.grad.shape == (4,)
    assert module.head_gate.grad.abs().min() > 0


# ------------------------------------------------------------------ observer
def test_head_observer_sees_pre_gate_heads():
    module = per_head(sr_ratio=2)
    seen = []
    module.head_observer = lambda heads: seen.append(heads.detach().clone())
    x, identity = tokens(), tokens(seed=5)
    with torch.no_grad():
        out = module(x, HW, identity)
    (heads,) = seen
    assert heads.shape == (2, 4, HW[0] * HW[1], 16)
    assert module.last_hw == HW
    # the observed tensor is pre-gate: gating + merging it gives the branch
    with torch.no_grad():
        assert (module.merge_heads(heads) + identity - out).abs().max() < 1e-6
        gate = module.head_gate.view(1, -1, 1, 1)
        flat = (heads * gate).transpose(1, 2).reshape(2, -1, 64)
        assert (module.proj(flat) + identity - out).abs().max() < 1e-6
    module.head_observer = None
    module(x, HW)
    assert len(seen) == 1


# ------------------------------------------------------------- head removal
@pytest.mark.parametrize('sr_ratio', [1, 2])
def test_remove_heads_equals_zero_gates(sr_ratio):
    module = per_head(sr_ratio=sr_ratio)
    zeroed = copy.deepcopy(module)
    with torch.no_grad():
        zeroed.head_gate[[0, 2]] = 0
    gates_before = module.head_gate.detach().clone()
    kept = remove_heads(module, [2, 0])
    assert module.num_heads == 2 and module.head_dim == 16
    assert module.scale == 16 ** -0.5 and module.embed_dims == 64
    assert module.q.weight.shape == (32, 64) and module.k.bias.shape == (32,)
    assert module.v.out_features == 32
    assert module.proj.weight.shape == (64, 32)
    assert module.proj.in_features == 32
    assert torch.equal(module.head_gate, gates_before[[1, 3]])
    assert torch.equal(kept['q.weight'][1], torch.cat(
        [torch.arange(16, 32), torch.arange(48, 64)]))
    assert kept['proj.weight'][0] == 1
    assert kept['head_gate'][1].tolist() == [1, 3]
    x, identity = tokens(), tokens(seed=5)
    with torch.no_grad():
        diff = module(x, HW, identity) - zeroed(x, HW, identity)
        assert diff.abs().max() < 1e-5
        ref = brute_force(module, x, identity)
        assert (module(x, HW, identity).double() - ref).abs().max() < 1e-5


def test_remove_heads_keeps_requires_grad_and_slices_grad():
    module = per_head()
    module(tokens(), HW).sum().backward()
    grad = module.q.weight.grad.clone()
    module.k.weight.requires_grad_(False)
    remove_heads(module, [1])
    rows = head_channels([0, 2, 3], 16)
    assert torch.equal(module.q.weight.grad, grad[rows])
    assert not module.k.weight.requires_grad and module.q.weight.requires_grad


def test_remove_heads_errors():
    single = from_efficient_attention(make_attention(1, num_heads=1))
    with pytest.raises(ValueError, match='single-head'):
        remove_heads(single, [0])
    module = per_head()
    with pytest.raises(ValueError, match='all 4 heads'):
        remove_heads(module, [0, 1, 2, 3])
    with pytest.raises(ValueError, match='out of range'):
        remove_heads(module, [4])
    with pytest.raises(TypeError, match='convert_mit_attention'):
        remove_heads(make_attention(), [0])
    assert remove_heads(module, []) == {} and module.num_heads == 4
    module.q = nn.Linear(64, 48)  # changed by hand: forward must refuse
    with pytest.raises(RuntimeError, match='num_heads=4'):
        module(tokens(), HW)


def test_iter_head_units_skips_single_head():
    model = make_mit()
    convert_mit_attention(model)
    names = [n for n, _ in iter_head_units(model)]
    assert len(names) == 6
    assert not any(n.startswith('layers.0.') for n in names)
    remove_heads(dict(iter_head_units(model))['layers.1.1.0.attn'], [0])
    assert len(list(iter_head_units(model))) == 5


# --------------------------------------------------------- state dict / load
def test_pruned_state_dict_round_trip():
    model = make_mit(seed=3)
    convert_mit_attention(model)
    units = dict(iter_head_units(model))
    remove_heads(units['layers.2.1.0.attn'], [0, 3])
    remove_heads(units['layers.3.1.1.attn'], [1, 2, 7])
    with torch.no_grad():
        units['layers.3.1.1.attn'].head_gate.mul_(0.5)
    state = model.state_dict()
    fresh = make_mit(seed=4)
    convert_mit_attention(fresh)
    with pytest.raises(RuntimeError, match='size mismatch'):
        fresh.load_state_dict(state)
    assert resize_heads_to_state_dict(fresh, state) == 8
    fresh.load_state_dict(state, strict=True)
    assert head_layout(fresh) == head_layout(model)
    assert head_layout(fresh)['layers.3.1.1.attn'] == dict(num_heads=5,
                                                           head_dim=32)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), fresh(x)):
            assert torch.equal(a, b)


def test_resize_single_module_errors():
    module = per_head()
    state = {'q.weight': torch.zeros(32, 64)}
    with pytest.raises(KeyError, match="'k.weight'"):
        resize_to_state_dict(module, state)


def test_legacy_packed_checkpoint_loads_into_converted_model():
    original = make_mit(seed=5)
    state = original.state_dict()
    assert 'layers.1.1.0.attn.attn.in_proj_weight' in state
    converted = make_mit(seed=6)
    convert_mit_attention(converted)
    resize_heads_to_state_dict(converted, state)  # no-op for packed keys
    converted.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(original(x), converted(x)):
            assert (a - b).abs().max() < 1e-5
    assert 'layers.1.1.0.attn.attn.in_proj_weight' in state  # not mutated


# ----------------------------------------------------------- torch-pruning
class _Forward(nn.Module):
    """Traces the inference path of an EncoderDecoder."""

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x):
        return self.segmentor._forward(x)


def make_segformer():
    init_default_scope('mmseg')
    torch.manual_seed(0)
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0],
                               std=[1, 1, 1]),
        backbone=dict(type='MixVisionTransformer', **B0),
        decode_head=dict(
            type='SegformerHead', in_channels=[32, 64, 160, 256],
            in_index=[0, 1, 2, 3], channels=64, num_classes=19,
            norm_cfg=dict(type='BN', requires_grad=True),
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)))
    model = MODELS.build(cfg).eval()
    assert convert_mit_attention(model) == 8
    for _, module in iter_head_units(model):
        with torch.no_grad():
            module.head_gate.uniform_(0.5, 1.5)
    return model


def _names(DG, group):
    return {(DG._module2name.get(dep.target.module, '?'),
             DG.is_out_channel_pruning_fn(dep.handler)) for dep, _ in group}


def test_dependency_graph_couples_qkv_and_proj():
    model = make_segformer()
    DG = tp.DependencyGraph().build_dependency(
        _Forward(model), example_inputs=torch.randn(1, 3, 64, 64),
        ignored_params=[m.head_gate for m in model.modules()
                        if isinstance(m, PerHeadEfficientAttention)])
    attn = model.backbone.layers[2][1][0].attn
    group = DG.get_pruning_group(attn.q, tp.prune_linear_out_channels,
                                 idxs=[0, 1])
    base = 'segmentor.backbone.layers.2.1.0.attn.'
    names = {n for n in _names(DG, group) if n[0] != '?'}
    assert names == {(base + 'q', True), (base + 'k', True),
                     (base + 'v', True), (base + 'proj', False)}
    residual = DG.get_pruning_group(attn.proj, tp.prune_linear_out_channels,
                                    idxs=[0])
    names = _names(DG, residual)
    assert (base + 'q', False) in names and (base + 'sr', False) in names
    assert (base + 'k', False) not in names  # k/v read the sr branch
    assert ('segmentor.decode_head.convs.2.conv', False) in names


def test_gate_left_in_graph_blocks_pruning_silently():
    model = make_segformer()
    attns = [m for _, m in iter_head_units(model)]
    before = {n: p.shape for n, p in model.named_parameters()}
    pruner = tp.pruner.MetaPruner(
        _Forward(model), torch.randn(1, 3, 64, 64),
        importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=0.,
        pruning_ratio_dict={a.q: 0.25 for a in attns},
        num_heads={layer: a.num_heads for a in attns
                   for layer in (a.q, a.k, a.v)},
        prune_num_heads=True, prune_head_dims=False, head_pruning_ratio=0.5,
        ignored_layers=[model.decode_head.conv_seg],
        unwrapped_parameters=[(m.head_gate, 0) for m in model.modules()
                              if isinstance(m, PerHeadEfficientAttention)])
    pruner.step()
    assert {n: p.shape for n, p in model.named_parameters()} == before


def test_set_attn_impl_flops_match_original():
    from mmengine.analysis import get_model_complexity_info

    from npdg.models import set_attn_impl
    model = MixVisionTransformer(embed_dims=16, num_heads=[1, 2, 2, 4],
                                 num_layers=[1, 1, 1, 1]).eval()
    converted = copy.deepcopy(model)
    convert_mit_attention(converted)
    x = torch.randn(1, 3, 32, 32)

    def flops(m):
        return get_model_complexity_info(m, inputs=(x,), show_table=False,
                                         show_arch=False)['flops']

    assert set_attn_impl(converted, 'math') == {
        n: 'sdpa' for n, m in converted.named_modules()
        if isinstance(m, PerHeadEfficientAttention)}
    assert flops(converted) == flops(model)
    with pytest.raises(ValueError, match='attn_impl'):
        set_attn_impl(converted, 'flash')
