"""Sparse training that survives the optimizer; budgets that say what they do."""
import copy

import pytest
import torch
from conftest import TinyNet, build, deeplab_r18_cfg
from mmengine.optim import OptimWrapper

import npdg  # noqa: F401
from npdg.analysis import segmentor_complexity
from npdg.hooks import SensitivitySparsityHook
from npdg.importance import Importance
from npdg.pruning.pruner import ThresholdShortfallError, UnitPruner
from npdg.pruning.units import collect_units


class _Runner:
    def __init__(self, model, optimizer):
        self.model, self.iter, self.hooks = model, 0, []
        self.optim_wrapper = OptimWrapper(optimizer)


def _train(optimizer_cls, mode, steps, s=2 ** -7, lr=2 ** -4, **opt_kwargs):
    """Steps with a loss that does not depend on the BN weight's size."""
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():
        net.bn.weight.copy_(torch.tensor([2 ** -5, 0.5, -2 ** -6, 1.0]))
    bn_params = [net.bn.weight, net.bn.bias]
    other = [p for p in net.parameters() if all(p is not q for q in bn_params)]
    optimizer = optimizer_cls([dict(params=other), dict(params=bn_params, weight_decay=0.0)],
                              lr=lr, **opt_kwargs)
    runner = _Runner(net, optimizer)
    hook = SensitivitySparsityHook(s=s, mode=mode)
    hook.before_train(runner)
    history = []
    x = torch.randn(2, 3, 5, 5)
    for it in range(steps):
        runner.iter = it
        hook.before_train_iter(runner, it)
        loss = (net(x) * 0).sum() + (net.conv.weight ** 2).sum()  # no pull on gamma
        runner.optim_wrapper.update_params(loss)
        hook.after_train_iter(runner, it)
        history.append(net.bn.weight.detach().clone())
    hook.detach()
    return history


@pytest.mark.parametrize('optimizer_cls,kwargs', [
    (torch.optim.AdamW, dict(weight_decay=0.01)),
    (torch.optim.SGD, dict(momentum=0.9, weight_decay=5e-4)),
])
def test_proximal_shrink_reaches_exact_zero_in_known_steps(optimizer_cls, kwargs):
    lr, s = 2 ** -4, 2 ** -7  # shrink of lr * s = 2^-11 per step (exact in float32)
    history = _train(optimizer_cls, 'proximal', 70, s=s, lr=lr, **kwargs)
    # gamma = 2^-5 -> 0 after exactly 2^-5 / 2^-11 = 64 steps, and stays there
    assert history[62][0] > 0
    assert history[63][0] == 0 and history[-1][0] == 0
    assert history[30][2] < 0 and history[31][2] == 0  # -2^-6: 32 steps, from below
    # large scales move by exactly lr * s per step
    assert history[9][3] == 1.0 - 10 * lr * s


def test_subgradient_under_adamw_never_reaches_zero():
    """Why the proximal form is the default: Adam normalises the sign away."""
    history = _train(torch.optim.AdamW, 'subgradient', 70, weight_decay=0.0)
    assert all(h[0] != 0 for h in history)  # it oscillates around 0 instead


def test_weight_decay_on_scales_is_warned(monkeypatch):
    import npdg.hooks.sensitivity_sparsity_hook as hook_module
    logged = []
    monkeypatch.setattr(hook_module, 'print_log', lambda msg, **kw: logged.append(msg))
    net = TinyNet()
    runner = _Runner(net, torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=5e-4))
    SensitivitySparsityHook(s=1e-4).before_train(runner)
    assert any('norm_decay_mult=0.0' in m for m in logged)
    logged.clear()
    runner = _Runner(net, torch.optim.SGD([dict(params=[net.conv.weight, net.conv.bias]),
                                           dict(params=[net.bn.weight, net.bn.bias],
                                                weight_decay=0.0)],
                                          lr=0.1, weight_decay=5e-4))
    SensitivitySparsityHook(s=1e-4).before_train(runner)
    assert not logged


def _scores_with(units, low):
    """BN-scale-like scores: ``low`` units per layer far below 0.1."""
    return [torch.cat([torch.full((min(low, u.num_units),), 0.01),
                       torch.full((u.num_units - min(low, u.num_units),), 1.0)])
            for u in units]


class _FixedImportance(Importance):
    uses_threshold = True

    def __init__(self, low):
        self.low = low

    def __call__(self, units, context=None):
        return _scores_with([units], self.low)[0]


def test_a_criterion_without_the_context_argument_is_refused_by_name():
    class OldCriterion(Importance):
        def __call__(self, units):
            return torch.ones(units.num_units)

    with pytest.raises(TypeError, match=r'OldCriterion.__call__ must take \(units, context\)'):
        UnitPruner(importance=OldCriterion())


def test_threshold_shortfall_warns_and_fills_or_errors(monkeypatch):
    import npdg.pruning.pruner as pruner_module
    logged = []
    monkeypatch.setattr(pruner_module, 'print_log', lambda msg, **kw: logged.append(msg))
    model = build(deeplab_r18_cfg())
    _, units = collect_units(model)
    total = sum(u.num_units for u in units)
    budget = int(0.3 * total)
    pruner = UnitPruner(importance=_FixedImportance(1), threshold=0.1, shortfall='ratio')
    result = pruner.step(copy.deepcopy(model), budget)
    assert result.shortfall['below_threshold'] == len(units) < budget
    assert result.removed == budget  # filled by rank
    assert any('SHORTFALL' in m and str(budget) in m for m in logged)
    strict = UnitPruner(importance=_FixedImportance(1), threshold=0.1, shortfall='error')
    with pytest.raises(ThresholdShortfallError, match='budget'):
        strict.step(copy.deepcopy(model), budget)


def test_auxiliary_head_channels_are_not_units():
    model = build(deeplab_r18_cfg())
    _, units = collect_units(model)
    assert units
    for u in units:
        assert not all(name.startswith('auxiliary_head.') for name, *_ in u.bns), u.name
    # the aux head's own conv (16 channels) exists but is not a unit
    assert model.auxiliary_head.convs[0].conv.out_channels == 16


@pytest.mark.parametrize('target', [0.5, 0.7])
def test_flops_target_is_met_within_one_unit(target):
    model = build(deeplab_r18_cfg()).eval()
    shape = (3, 64, 64)

    def gflops(m):
        return segmentor_complexity(m, shape)['gflops']

    start = gflops(model)
    pruner = UnitPruner(importance=dict(type='L1Importance', normalizer='mean'))
    budget, reached = pruner.budget_for_flops(model, target * start, gflops)
    assert reached <= target * start
    pruned = copy.deepcopy(model)
    pruner.step(pruned, budget)
    assert gflops(pruned) == pytest.approx(reached)
    one_less = copy.deepcopy(model)
    pruner.step(one_less, budget - 1)
    assert gflops(one_less) > target * start  # one unit fewer misses the target


def test_mean_normaliser_spreads_the_prune_over_layers():
    """Raw global L1 drives small-filter groups to their floor; per-layer mean does not."""
    model = build(deeplab_r18_cfg())

    def removed_share(importance):
        m = copy.deepcopy(model)
        result = UnitPruner(importance=importance).step(
            m, int(0.3 * sum(u.num_units for u in collect_units(m)[1])))
        return [layer['units_before'] - layer['units_after'] for layer in result.layers], \
            [layer['units_before'] for layer in result.layers]

    raw, sizes = removed_share(dict(type='L1Importance'))
    norm, _ = removed_share(dict(type='L1Importance', normalizer='mean'))
    untouched_raw = sum(1 for r in raw if r == 0)
    untouched_norm = sum(1 for r in norm if r == 0)
    assert untouched_norm < untouched_raw
    from npdg.importance.base import normalize
    v = torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(normalize(v, 'mean'), v.double() / 2) and torch.equal(normalize(v, None),
                                                                       v.double())


def test_zero_initialised_scales_are_warned_about(monkeypatch):
    """mmseg's zero_init_residual BNs stay at 0 under the proximal shrink: the hook says so."""
    import npdg.hooks.sensitivity_sparsity_hook as hook_module
    logged = []
    monkeypatch.setattr(hook_module, 'print_log', lambda msg, **kw: logged.append(msg))
    net = TinyNet()
    runner = _Runner(net, torch.optim.SGD([dict(params=[net.conv.weight, net.conv.bias]),
                                           dict(params=[net.bn.weight, net.bn.bias],
                                                weight_decay=0.0)], lr=0.1))
    SensitivitySparsityHook(s=1e-2).before_train(runner)
    assert not logged
    with torch.no_grad():
        net.bn.weight[:2] = 0
    SensitivitySparsityHook(s=1e-2).before_train(runner)
    assert any('2 of 4 unit scales are exactly 0' in m and 'zero_init_residual=False' in m
               for m in logged)


def test_prune_record_counts_scales_at_zero_against_what_is_removed():
    model = build(deeplab_r18_cfg())
    bn = model.backbone.layer1[0].bn1
    with torch.no_grad():
        bn.weight[:5] = 0.0
    pruner = UnitPruner(importance=dict(type='BNScaleImportance'), threshold=None)
    result = pruner.step(model, 3)
    (entry, ) = [e for e in result.layers if e['name'] == 'backbone.layer1.0.conv1']
    assert entry['zero_scales'] == 5 and entry['zero_scales_removed'] == 3
    assert sum(e.get('zero_scales', 0) for e in result.layers) == 5


def test_unit_costs_match_a_hand_count_and_steer_the_flops_aware_ranking():
    from npdg.pruning.cost import unit_costs
    model = build(deeplab_r18_cfg())
    graph, units = collect_units(model)
    costs = dict(zip([u.name for u in units], unit_costs(model, graph, units, (3, 64, 64))))
    # layer1.0.conv1 (3x3, 64 -> 64 at 16x16 for a 64x64 input): one output channel of it
    # and one input channel of layer1.0.conv2
    conv1, conv2 = model.backbone.layer1[0].conv1, model.backbone.layer1[0].conv2
    hw = 16 * 16
    assert costs['backbone.layer1.0.conv1'] == (conv1.weight[0].numel() + conv2.weight[:, 0].numel()) * hw
    # equal scores everywhere: the FLOPs-aware ranking removes the most expensive units first
    class Flat(Importance):
        def __call__(self, units, context=None):
            return torch.ones(units.num_units)
    aware = UnitPruner(importance=Flat(), threshold=None, min_keep_ratio=0.5, flops_aware=True)
    result = aware.step(copy.deepcopy(model), 10)
    removed = [e['name'] for e in result.layers if e['removed']]
    costliest = max(costs, key=costs.get)
    assert removed == [costliest]


def _features(model, x, module):
    seen = {}
    handle = module.register_forward_hook(lambda m, a, o: seen.update(out=o.detach().clone()))
    with torch.no_grad():
        model._forward(x)
    handle.remove()
    return seen['out']


@pytest.mark.parametrize('fold', [True, False])
def test_removed_zero_scale_channels_are_folded_into_the_next_layer(fold):
    """A channel with gamma = 0 emits relu(beta); after its removal the next BN's
    output is unchanged (interior positions: zero padding hides part of any constant)."""
    model = build(deeplab_r18_cfg()).eval()
    block = model.backbone.layer1[0]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
        block.bn1.weight[:6] = 0.0
        block.bn1.bias[:6] = torch.tensor([0.5, 1.0, -0.3, 2.0, 0.7, 0.1])  # relu(beta) > 0 mostly
    x = torch.randn(1, 3, 64, 64)
    before = _features(model, x, block.bn2)
    pruner = UnitPruner(importance=dict(type='BNScaleImportance'), threshold=None,
                        fold_constants=fold)
    result = pruner.step(model, 6)
    (entry, ) = [e for e in result.layers if e['name'] == 'backbone.layer1.0.conv1']
    assert sorted(entry['removed']) == [0, 1, 2, 3, 4, 5]
    assert block.conv1.out_channels == 58 and block.conv2.in_channels == 58
    after = _features(model, x, block.bn2)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    gap = float((after[inner] - before[inner]).abs().max())
    if fold:
        assert result.folded['folded'] == 6 and gap < 1e-5
    else:
        assert result.folded == {} and gap > 1e-2  # the constant was lost
