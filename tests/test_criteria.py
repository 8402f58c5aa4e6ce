"""Every registered criterion on the shared scoring machinery, with brute-force references."""

import pytest
import torch
import torch.nn.functional as F
from conftest import build, deeplab_r18_cfg, segformer_b0_cfg
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import npdg  # noqa: F401
from npdg.analysis.complexity import segmentor_complexity
from npdg.engine.run_state import NpdgRunState, run_state
from npdg.engine.runner import NpdgRunner
from npdg.importance import IMPORTANCES, ScoringBatches, ScoringContext, build_importance
from npdg.pruning.pruner import UnitPruner
from npdg.pruning.selection import cumulative_fraction, select_units_per_layer, step_budget
from npdg.pruning.structure import add_structure, load_pruned_checkpoint
from npdg.pruning.units import ChannelUnits, HeadUnits, collect_units


def raw_batches(num_batches=2, batch_size=2, size=64, seed=0):
    """Raw (uint8 BGR, labels) batches as a train loader yields them."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_batches):
        inputs, samples = [], []
        for _ in range(batch_size):
            inputs.append(torch.randint(0, 256, (3, size, size), generator=gen,
                                        dtype=torch.uint8))
            s = SegDataSample()
            s.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, size, size), generator=gen))
            s.set_metainfo(dict(img_shape=(size, size), pad_shape=(size, size),
                                ori_shape=(size, size)))
            samples.append(s)
        out.append(dict(inputs=inputs, data_samples=samples))
    return out


def fake_statistics(model, seed=0):
    """w per observed layer (BN channels, attention heads), seeded."""
    from npdg.hooks.sensitivity_statistics_hook import observed_layers
    gen = torch.Generator().manual_seed(seed)
    stats = {}
    for name, m in observed_layers(model).items():
        n = m.num_features if hasattr(m, 'num_features') else m.num_heads
        stats[name] = dict(w=torch.rand(n, generator=gen), unary_norm=torch.rand(n, generator=gen),
                           binary_norm=torch.rand(n, generator=gen))
    return stats


def context_for(model, seed=0, **kwargs):
    return ScoringContext(model, batches=raw_batches(seed=seed), statistics=fake_statistics(model),
                          seed=seed, **kwargs)


def _model(arch):
    if arch == 'deeplab':
        return build(deeplab_r18_cfg()).eval()
    from npdg.models import convert_mit_attention
    model = build(segformer_b0_cfg())
    convert_mit_attention(model)
    return model.eval()


def _config(name):
    return dict(type=name, seed=0) if name == 'RandomImportance' else dict(type=name)


@pytest.mark.parametrize('name', IMPORTANCES)
@pytest.mark.parametrize('arch', ['deeplab', 'segformer'])
def test_criterion_scores_prune_train_reload(name, arch, tmp_path):
    model = _model(arch)
    pruner = UnitPruner(_config(name), threshold=None, trace_shape=(3, 64, 64))
    _, units = pruner.units(model)
    scores = pruner.score(units, context_for(model))
    assert [s.shape for s in scores] == [(u.num_units,) for u in units]
    assert all(torch.isfinite(s).all() for s in scores)
    # deterministic for a seed: a fresh criterion and context give the same scores
    again = UnitPruner(_config(name), threshold=None).score(units, context_for(model))
    assert all(torch.equal(a, b) for a, b in zip(scores, again))
    # the parameters are untouched and no .grad is left behind
    assert all(p.grad is None for p in model.parameters())
    total = sum(u.num_units for u in units)
    before = segmentor_complexity(model, (3, 64, 64))
    result = pruner.step(model, int(0.3 * total), context=context_for(model))
    assert result.removed == int(0.3 * total)
    after = segmentor_complexity(model, (3, 64, 64))
    assert after['flops'] < before['flops'] and after['params'] < before['params']
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64) * 255, mode='tensor').shape[:2] == (2, 19)
    # train one step on the pruned model, save with its structure, reload bit-exact
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    inputs, samples = ScoringContext(model, raw_batches(1)).processed()[0]
    sum(v for k, v in model.loss(inputs, samples).items() if 'loss' in k).backward()
    opt.step()
    ckpt = add_structure(dict(state_dict=model.state_dict(), meta={}), model)
    torch.save(ckpt, tmp_path / 'pruned.pth')
    fresh = _model(arch)
    load_pruned_checkpoint(fresh, str(tmp_path / 'pruned.pth'), strict=True)
    for (k, a), (k2, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def _tiny_units(model):
    _, units = collect_units(model, (3, 64, 64))
    return units


def _brute_unit_sum(units, value):
    """Per-unit sums by explicit loops over each unit's parameter entries.

    ``value(name)`` gives the per-entry tensor of a parameter; it is computed once
    per name (the loops index it many times).
    """
    out = torch.zeros(units.num_units, dtype=torch.float64)
    cache = {}

    def value(name, _value=value):
        if name not in cache:
            cache[name] = _value(name)
        return cache[name]

    if units.kind == 'head':
        m, d = units.module, units.module.head_dim
        for h in range(units.num_units):
            rows = slice(h * d, (h + 1) * d)
            for lin in ('q', 'k', 'v'):
                out[h] += value(f'{units.name}.{lin}.weight')[rows].sum().item()
                if getattr(m, lin).bias is not None:
                    out[h] += value(f'{units.name}.{lin}.bias')[rows].sum().item()
            out[h] += value(f'{units.name}.proj.weight')[:, rows].sum().item()
            if m.head_gate is not None:
                out[h] += value(f'{units.name}.head_gate')[h].item()
        return out
    for name, layer, idxs, roots in units.convs + units.bns:
        for i, r in zip(idxs, roots):
            out[r] += value(f'{name}.weight')[i].sum().item()
            if layer.bias is not None:
                out[r] += value(f'{name}.bias')[i].item()
    return out


def _autograd_grads(model, inputs_list, samples_list):
    """Per batch: gradient of the eval-mode loss, by plain .backward()."""
    out = []
    for inputs, samples in zip(inputs_list, samples_list):
        model.zero_grad()
        sum(v for k, v in model.loss(inputs, samples).items() if 'loss' in k).backward()
        out.append({n: p.grad.detach().clone() for n, p in model.named_parameters()
                    if p.grad is not None})
    model.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize('arch', ['deeplab', 'segformer'])
def test_taylor_against_autograd_on_two_samples(arch):
    model = _model(arch)
    context = ScoringContext(model, batches=raw_batches(num_batches=2, batch_size=1))
    units = _tiny_units(model)
    got = UnitPruner(dict(type='TaylorImportance'), threshold=None).score(units, context)
    processed = context.processed()
    grads = _autograd_grads(model, [p[0] for p in processed], [p[1] for p in processed])
    params = dict(model.named_parameters())
    for u, s in zip(units, got):
        ref = sum(_brute_unit_sum(u, lambda n, g=g: params[n].detach() * g[n]).abs()
                  for g in grads) / len(grads)
        assert torch.allclose(s, ref, rtol=1e-4, atol=1e-9), u.name


@pytest.mark.parametrize('arch', ['deeplab', 'segformer'])
def test_hessian_against_per_sample_autograd(arch):
    model = _model(arch)
    context = ScoringContext(model, batches=raw_batches(num_batches=1, batch_size=2))
    units = _tiny_units(model)
    got = UnitPruner(dict(type='HessianImportance'), threshold=None).score(units, context)
    inputs, samples = context.processed()[0]
    per_sample = _autograd_grads(model, [inputs[:1], inputs[1:]], [samples[:1], samples[1:]])
    params = dict(model.named_parameters())
    for u, s in zip(units, got):
        ref = _brute_unit_sum(u, lambda n: params[n].detach().double() ** 2 * (
            per_sample[0][n].double() ** 2 + per_sample[1][n].double() ** 2) / 2)
        assert torch.allclose(s, ref, rtol=1e-4, atol=1e-12), u.name


def test_risk_variance_with_beta_zero_is_taylor(deeplab):
    model = deeplab.eval()
    units = _tiny_units(model)
    context = context_for(model)
    taylor = UnitPruner(dict(type='TaylorImportance', num_domains=2),
                        threshold=None).score(units, context)
    flat = UnitPruner(dict(type='DomainRiskVarianceImportance', beta=0.0, num_domains=2),
                      threshold=None).score(units, context)
    varied = UnitPruner(dict(type='DomainRiskVarianceImportance', beta=1.0, num_domains=2),
                        threshold=None).score(units, context)
    assert all(torch.equal(a, b) for a, b in zip(taylor, flat))
    assert not all(torch.allclose(a, b) for a, b in zip(taylor, varied))


def test_risk_variance_gradient_against_autograd(deeplab):
    model = deeplab.eval()
    context = ScoringContext(model, batches=raw_batches(num_batches=1))
    units = _tiny_units(model)
    context.units = units
    params, per_batch = context.gradients(num_domains=2, beta=1.0)
    _, samples = context.processed()[0]
    risks = torch.stack([sum(v for k, v in model.loss(context.domain_inputs(0, d),
                                                       samples).items() if 'loss' in k)
                         for d in range(3)])
    (risks.mean() + ((risks - risks.mean()) ** 2).mean()).backward()
    for n, g in per_batch[0].items():
        assert torch.allclose(g, params[n].grad, rtol=1e-4, atol=1e-8), n
    model.zero_grad(set_to_none=True)


def test_pseudo_domains_are_one_style_per_domain(deeplab):
    context = ScoringContext(deeplab.eval(), batches=raw_batches(num_batches=2))
    a, b = context.domain_inputs(0, 1), context.domain_inputs(1, 1)
    clean_a, clean_b = context.domain_inputs(0, 0), context.domain_inputs(1, 0)
    assert not torch.equal(a, clean_a) and not torch.equal(context.domain_inputs(0, 2), a)
    # same style for every image: an affine re-colouring with the same per-channel map
    # means the styled images differ from the clean ones, and a second context agrees
    again = ScoringContext(deeplab, batches=raw_batches(num_batches=2)).domain_inputs(1, 1)
    assert torch.equal(b, again) and not torch.equal(b, clean_b)


def test_dss_by_hand(deeplab):
    model = deeplab.eval()
    context = ScoringContext(model, batches=raw_batches(num_batches=1))
    units = _tiny_units(model)
    unit = next(u for u in units if any(n == 'backbone.layer1.0.bn1' for n, *_ in u.bns))
    got = build_importance(dict(type='DSSImportance'))(unit, context)
    bn = dict(model.named_modules())['backbone.layer1.0.bn1']
    model.eval()  # as the context runs it
    maps = []
    handle = bn.register_forward_hook(lambda m, a, out: maps.append(out.detach().clone()))
    with torch.no_grad():
        model._forward(context.domain_inputs(0, 0))
        for d in (1, 2, 3):
            model._forward(context.domain_inputs(0, d))
    handle.remove()
    clean = maps[0].double().mean(0)
    styled = torch.cat([maps[1], maps[2], maps[3]]).double().mean(0)
    sim = F.cosine_similarity(clean.flatten(1), styled.flatten(1), dim=1)
    assert len(unit.bns) == 1
    assert torch.allclose(got, sim, atol=1e-6)
    assert (got <= 1 + 1e-9).all() and (got >= -1 - 1e-9).all()


def test_dss_target_option_needs_target_images(deeplab):
    context = ScoringContext(deeplab.eval(), batches=raw_batches(num_batches=1))
    unit = _tiny_units(deeplab)[0]
    with pytest.raises(RuntimeError, match='target_dataset'):
        build_importance(dict(type='DSSImportance', shifted='target'))(unit, context)
    oracle = ScoringContext(deeplab, batches=raw_batches(num_batches=1),
                            target_batches=raw_batches(num_batches=1, seed=5))
    got = build_importance(dict(type='DSSImportance', shifted='target'))(unit, oracle)
    assert torch.isfinite(got).all()


def test_sensitivity_importance_is_one_minus_mean_w(deeplab):
    stats = fake_statistics(deeplab)
    context = ScoringContext(deeplab, statistics=stats)
    for u in _tiny_units(deeplab):
        ref = torch.zeros(u.num_units, dtype=torch.float64)
        count = torch.zeros(u.num_units, dtype=torch.float64)
        for name, bn, idxs, roots in u.bns:
            for i, r in zip(idxs, roots):
                ref[r] += float(stats[name]['w'][i])
                count[r] += 1
        got = build_importance(dict(type='SensitivityImportance'))(u, context)
        assert torch.allclose(got, 1 - ref / count.clamp(min=1)), u.name


def test_data_criteria_explain_what_they_miss(deeplab):
    unit = _tiny_units(deeplab)[0]
    with pytest.raises(ValueError, match='ScoringContext'):
        build_importance(dict(type='TaylorImportance'))(unit)
    with pytest.raises(RuntimeError, match='SensitivityStatisticsHook'):
        build_importance(dict(type='SensitivityImportance'))(unit, ScoringContext(deeplab))
    with pytest.raises(RuntimeError, match='batches'):
        build_importance(dict(type='HessianImportance'))(unit, ScoringContext(deeplab))


def test_scoring_batches_leave_global_rng_alone():
    class Data:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return dict(i=i, r=torch.rand(1).item())
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    draw = ScoringBatches(Data(), list, batch_size=2, num_batches=4, seed=1)()
    assert torch.equal(torch.rand(1), expected)
    assert [len(b) for b in draw] == [2, 2, 2, 2]
    assert draw == ScoringBatches(Data(), list, 2, 4, seed=1)()
    assert sorted({x['i'] for b in draw for x in b}) == [0, 1, 2, 3, 4]


def test_per_layer_scope_takes_the_same_share_of_every_layer():
    units = [ChannelUnits(name='a', root=None, group=None, num_units=10),
             ChannelUnits(name='b', root=None, group=None, num_units=30),
             HeadUnits(name='h', module=None, num_units=20)]
    scores = [torch.arange(10.), torch.arange(30.) * 0.001, torch.arange(20.) + 100]
    chosen = select_units_per_layer(units, scores, 12, min_keep_ratio=0.0)
    assert [len(c) for c in chosen] == [2, 6, 4]
    assert chosen[0] == [0, 1] and chosen[2] == [0, 1, 2, 3]


def test_geometric_schedule_removes_a_fixed_share_of_what_remains():
    p, k = 0.5, 3
    per_step = 1 - (1 - p) ** (1 / k)
    remaining, removed = 1000, 0
    for step in range(1, k + 1):
        budget = step_budget(1000, p, step, k, removed, schedule='geometric')
        assert abs(budget - per_step * remaining) <= 1
        removed += budget
        remaining -= budget
    assert removed == 500
    assert cumulative_fraction(p, k, k, 'geometric') == pytest.approx(p)
    assert step_budget(100, 0.3, 1, 2, 0) == 15  # linear unchanged


def test_run_state_is_one_object_per_runner():
    class Runner:
        pass
    runner = Runner()
    state = run_state(runner)
    assert isinstance(state, NpdgRunState) and run_state(runner) is state
    calls = []
    state.subscribe_pruned(lambda r: calls.append('a'))
    cb = lambda r: calls.append('b')  # noqa: E731
    state.subscribe_pruned(cb)
    state.subscribe_pruned(cb)
    state.notify_pruned(runner)
    assert calls == ['a', 'b']


def _record_batches_hook():
    from mmengine.hooks import Hook
    from mmseg.registry import HOOKS

    if 'BatchRecorderHook' not in HOOKS.module_dict:
        @HOOKS.register_module()
        class BatchRecorderHook(Hook):
            priority = 'VERY_HIGH'

            def __init__(self):
                self.paths = []

            def before_train_iter(self, runner, batch_idx, data_batch=None):
                self.paths.append([s.img_path for s in data_batch['data_samples']])


def test_data_criterion_in_a_run_leaves_the_training_stream_alone(tmp_path):
    """DSS in a real run: 2 geometric per-layer steps; the training batches are the same
    as without pruning (the scoring context draws its own)."""
    import json

    from conftest import runner_cfg
    _record_batches_hook()
    style = dict(type='StylePerturbationHook', perturbation=dict(type='AdvStyle'))
    prune = dict(type='UnitPruningHook', prune_iters=[2, 4], ratio=0.3, threshold=None,
                 importance=dict(type='DSSImportance'), scope='layer', schedule='geometric',
                 scoring=dict(num_batches=2))
    runs = {}
    for name, hooks in (('pruned', [style, prune]), ('plain', [style])):
        runner = NpdgRunner.from_cfg(runner_cfg(tmp_path / name, deeplab_r18_cfg(), max_iters=5,
                                            custom_hooks=hooks + [dict(type='BatchRecorderHook')]))
        runner.train()
        runs[name] = next(h for h in runner.hooks if type(h).__name__ == 'BatchRecorderHook')
    assert runs['pruned'].paths == runs['plain'].paths
    steps = json.load(open(tmp_path / 'pruned' / 'pruning' / 'pruning_report.json'))['steps']
    total = steps[0]['total']
    first = int(total * (1 - 0.7 ** 0.5) + 1e-9)
    assert [s['removed'] for s in steps][0] <= first
    assert sum(s['removed'] for s in steps) <= int(0.3 * total)
    assert all(s['seconds'] > 0 for s in steps)
    # per layer: every layer lost about the same share at step 1
    shares = [1 - e['units_after'] / e['units_before'] for e in steps[0]['layers']
              if e['units_before'] >= 20]
    assert max(shares) - min(shares) < 0.1


def test_criteria_have_their_own_registry_not_mmsegs_models():
    from mmseg.registry import MODELS

    from npdg.importance import CRITERIA, IMPORTANCES, build_importance
    assert sorted(CRITERIA.module_dict) == sorted(IMPORTANCES) and len(IMPORTANCES) >= 10
    assert all(MODELS.get(name) is None for name in IMPORTANCES)
    assert type(build_importance(dict(type='L1Importance'))).__name__ == 'L1Importance'


def test_a_criterion_registered_the_old_way_fails_with_the_fix():
    import torch.nn as nn
    from mmseg.registry import MODELS

    from npdg.importance import build_importance

    @MODELS.register_module(force=True)
    class OldStyleImportance(nn.Module):
        pass
    with pytest.raises(KeyError, match='register_importance'):
        build_importance(dict(type='OldStyleImportance'))
    with pytest.raises(KeyError, match="Unknown importance 'Nope'"):
        build_importance(dict(type='Nope'))


def test_a_criterion_without_the_context_argument_fails_with_the_fix():
    from npdg.importance import Importance, build_importance

    class NoContext(Importance):
        def __call__(self, units):
            return units
    with pytest.raises(TypeError, match=r'NoContext.__call__ must take \(units, context\)'):
        build_importance(NoContext())


def test_each_pass_runs_once_per_step_whatever_asks_for_it(deeplab, monkeypatch):
    """Two criteria sharing a context share its passes; other arguments run anew."""
    from npdg.importance import passes
    model = deeplab.eval()
    counts = {}
    for name in ('risk_gradients', 'squared_gradients', 'mean_maps'):
        real = getattr(passes, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            counts[_name] = counts.get(_name, 0) + 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(passes, name, counted)
    context = ScoringContext(model, batches=raw_batches(num_batches=1, batch_size=1))
    units = _tiny_units(model)
    for criterion in ('TaylorImportance', 'TaylorImportance', 'HessianImportance',
                      'HessianImportance', 'DSSImportance', 'DSSImportance'):
        UnitPruner(dict(type=criterion), threshold=None).score(units, context)
    assert counts == dict(risk_gradients=1, squared_gradients=1, mean_maps=2)  # DSS: 2 domains
    context.gradients(num_domains=2, beta=1.0)
    assert counts['risk_gradients'] == 2


def test_scoring_data_and_passes_work_without_a_context(deeplab):
    """The data object needs only the preprocessor; a pass is a plain function of it."""
    from npdg.importance import ScoringData, passes
    model = deeplab.eval()
    data = ScoringData(model.data_preprocessor, raw_batches(num_batches=1, seed=3), seed=5)
    context = ScoringContext(model, batches=raw_batches(num_batches=1, seed=3), seed=5)
    assert torch.equal(data.domain_inputs(0, 2), context.domain_inputs(0, 2))
    assert not torch.equal(data.domain_inputs(0, 2), data.domain_inputs(0, 1))
    maps = passes.mean_maps(model, data, 'clean')
    assert set(maps) == set(context.mean_maps('clean'))
    assert all(torch.equal(maps[n], context.mean_maps('clean')[n]) for n in maps)
    with pytest.raises(RuntimeError, match='target_dataset'):
        data.batches('target')
