"""Units, importance criteria, global selection and one prune step."""
import math

import torch

import npdg  # noqa: F401
from npdg.importance import build_importance
from npdg.pruning.pruner import UnitPruner
from npdg.pruning.selection import max_removable, select_units, step_budget
from npdg.pruning.units import ChannelUnits, HeadUnits, collect_units


def _units_by_name(units):
    return {u.name: u for u in units}


def test_channel_groups_follow_the_couplings(deeplab):
    _, units = collect_units(deeplab, (3, 64, 64))
    bn_sets = [{b[0] for b in u.bns} for u in units if u.kind == 'channel']
    # the residual width of layer4 is one unit group with every block's last BN
    # and the downsample BN, and the ASPP depthwise convs reading it
    layer4 = next(s for s in bn_sets if 'backbone.layer4.0.bn2' in s)
    assert {'backbone.layer4.1.bn2', 'backbone.layer4.0.downsample.1',
            'decode_head.aspp_modules.1.depthwise_conv.bn'} <= layer4
    # classifiers are never units
    names = {b[0] for s in units for b in s.convs}
    assert 'decode_head.conv_seg' not in names and 'auxiliary_head.conv_seg' not in names
    # every BN of the model is in exactly one group, except the auxiliary
    # head's own (training only: pruning it saves no inference FLOPs)
    all_bns = {n for n, m in deeplab.named_modules()
               if isinstance(m, torch.nn.BatchNorm2d) and not n.startswith('auxiliary_head.')}
    seen = [b for s in bn_sets for b in s]
    assert sorted(seen) == sorted(all_bns)


def test_heads_are_units_except_single_head_stages(segformer):
    _, units = collect_units(segformer, (3, 64, 64))
    heads = [u for u in units if u.kind == 'head']
    assert sorted(u.num_units for u in heads) == [2, 5, 8]
    assert all('block1' not in u.name for u in heads)


def test_gather_reductions_by_hand():
    bn1 = torch.nn.BatchNorm2d(3)
    bn2 = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn1.weight.copy_(torch.tensor([0.1, -0.8, 0.3]))
        bn2.weight.copy_(torch.tensor([0.5, 0.2]))
    units = ChannelUnits(name='g', root=None, group=None, num_units=3,
                         bns=[('a', bn1, [0, 1, 2], [0, 1, 2]), ('b', bn2, [0, 1], [0, 2])])
    def fn(name, bn):
        return bn.weight.abs()
    assert torch.allclose(units.gather(fn), torch.tensor([0.3, 0.8, 0.25], dtype=torch.float64))
    assert torch.allclose(units.gather(fn, reduction='max'),
                          torch.tensor([0.5, 0.8, 0.3], dtype=torch.float64))


# Every registered criterion is scored, pruned, trained and reloaded in
# tests/test_criteria.py (parametrised over IMPORTANCES).




def test_magnitude_importance_brute_force():
    conv = torch.nn.Conv2d(2, 3, 3)
    units = ChannelUnits(name='c', root=conv, group=None, num_units=3,
                         convs=[('c', conv, [0, 1, 2], [0, 1, 2])])
    for p in (1, 2):
        ref = torch.tensor([conv.weight[i].abs().pow(p).sum().pow(1 / p).item()
                            for i in range(3)], dtype=torch.float64)
        got = build_importance(dict(type='MagnitudeImportance', p=p))(units)
        assert torch.allclose(got, ref, atol=1e-6)


def test_bn_scale_importance_of_heads(segformer):
    _, units = collect_units(segformer, (3, 64, 64), channels=False)
    u = next(u for u in units if u.num_units == 5)
    with torch.no_grad():
        u.module.head_gate.copy_(torch.tensor([1.0, -0.2, 0.05, 0.7, -0.9]))
    got = build_importance(dict(type='BNScaleImportance'))(u)
    assert torch.allclose(got, torch.tensor([1.0, 0.2, 0.05, 0.7, 0.9], dtype=torch.float64))


def _fake(name, n, kind='channel'):
    return ChannelUnits(name=name, root=None, group=None, num_units=n) if kind == 'channel' \
        else HeadUnits(name=name, module=None, num_units=n)


def test_select_units_threshold_budget_caps():
    units = [_fake('a', 4), _fake('b', 10), _fake('h', 3, 'head')]
    scores = [torch.tensor([0.05, 0.5, 0.01, 0.2]),
              torch.tensor([0.02] * 9 + [0.9]),
              torch.tensor([0.03, 0.04, 0.001])]
    # threshold 0.1, budget 100: every score < 0.1 unless capped (10 % kept, >= 1)
    got = select_units(units, scores, budget=100, threshold=0.1, min_keep_ratio=0.1)
    assert got == [[0, 2], list(range(9)), [0, 2]]  # heads keep one: the 0.04 one
    # budget 3 takes the three smallest globally: h2 (0.001), a2 (0.01), then the
    # 0.02s of b in index order
    got = select_units(units, scores, budget=3, threshold=None)
    assert got == [[2], [0], [2]]
    # min_keep_ratio 0.5 caps b at 5 removals
    got = select_units(units, scores, budget=100, threshold=0.1, min_keep_ratio=0.5)
    assert len(got[1]) == 5 and got[1] == [0, 1, 2, 3, 4]


def test_select_units_round_to():
    units = [_fake('a', 16)]
    scores = [torch.arange(16, dtype=torch.float64)]
    got = select_units(units, scores, budget=5, round_to=4, min_keep_ratio=0.0)
    assert got == [[0, 1, 2, 3]]  # 12 kept, a multiple of 4
    assert max_removable(units[0], 1, 0.1, round_to=8) == 8


def test_step_budget_is_cumulative():
    assert [step_budget(100, 0.3, k, 3, 10 * (k - 1)) for k in (1, 2, 3)] == [10, 10, 10]
    assert step_budget(100, 0.3, 2, 3, 15) == 5
    assert math.floor(0.3 * 7) == step_budget(7, 0.3, 1, 1, 0)


def test_every_layer_keeps_its_minimum_even_inside_concat_groups(deeplab):
    pruner = UnitPruner(dict(type='L1Importance'), trace_shape=(3, 64, 64), min_keep_ratio=0.25)
    _, units = pruner.units(deeplab)
    sizes = {n: m.out_channels for n, m in deeplab.named_modules()
             if isinstance(m, torch.nn.Conv2d)}
    pruner.step(deeplab, budget=sum(u.num_units for u in units))  # as much as allowed
    for name, m in deeplab.named_modules():
        if isinstance(m, torch.nn.Conv2d) and not name.endswith('conv_seg'):
            assert m.out_channels >= math.ceil(0.25 * sizes[name]), name
    with torch.no_grad():
        assert deeplab.eval()(torch.rand(1, 3, 64, 64), mode='tensor').shape[1] == 19
