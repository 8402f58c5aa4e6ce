"""AdaSAP: per-unit radii, the ASAM step per unit, the two-pass hook, phases and resume."""
import copy
from types import SimpleNamespace

import pytest
import torch
from conftest import build, deeplab_r18_cfg, register_random_dataset, runner_cfg, segformer_b0_cfg
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper

import npdg  # noqa: F401
from npdg.engine.runner import NpdgRunner
from npdg.hooks import AdaSAPHook
from npdg.importance.unit_params import unit_slices
from npdg.models import convert_mit_attention
from npdg.pruning.units import collect_units
from npdg.sharpness import UnitIndex, adaptive_perturbation, normalised_scores, unit_radii

MODELS = dict(deeplab=deeplab_r18_cfg, segformer=segformer_b0_cfg)


def _model(kind):
    model = build(MODELS[kind]())
    convert_mit_attention(model)
    return model


def _batch(length=2, seed=0):
    register_random_dataset()
    from mmseg.registry import DATASETS
    ds = DATASETS.build(dict(type='RandomSegDataset', length=length, seed=seed))
    return pseudo_collate([ds[i] for i in range(length)])


# ------------------------------------------------------------------ radii
def test_radii_fall_linearly_with_the_layer_normalised_importance():
    scores = [torch.tensor([3.0, 1.0, 2.0]), torch.tensor([5.0, 5.0])]
    assert normalised_scores(scores[0]).tolist() == [1.0, 0.0, 0.5]
    assert normalised_scores(scores[1]).tolist() == [0.5, 0.5]  # no unit more important
    radii = unit_radii(scores, rho_min=0.01, rho_max=2.0)
    assert torch.allclose(radii[0], torch.tensor([0.01, 2.0, 1.005], dtype=torch.float64))
    assert torch.allclose(radii[1], torch.tensor([1.005, 1.005], dtype=torch.float64))


# ------------------------------------------------------- the step, brute force
def _reference_eps(model, units, grads, radii, free_radius, eta, normalization='global'):
    """With explicit masks: eps_i = rho_i T_i^2 g_i / ||T_i g_i|| ('unit') or / ||T g||
    over every weight ('global'); an entry claimed twice belongs to the first claim."""
    params = dict(model.named_parameters())
    owner = {n: torch.full(p.shape, -1, dtype=torch.long) for n, p in params.items()}
    flat_radii, offset, touches = [], 0, []
    for u, r in zip(units, radii):
        names = set()
        for pname, dim, idxs, own in unit_slices(u):
            names.add(pname)
            for k, i in enumerate(idxs.tolist()):
                entry = owner[pname].select(dim, i)
                entry[entry < 0] = offset + int(own[k])
        touches += [sorted(names)] * u.num_units
        flat_radii += [float(v) for v in r]
        offset += u.num_units
    # Entry-wise: each weight entry takes its owner's radius and its owner group's norm
    # (scatter over the owner map, not the implementation's slices).
    rho = torch.tensor(flat_radii + [free_radius], dtype=torch.float64)
    tg = {n: ((p.detach().abs() + eta) * grads[n]).double() for n, p in params.items()}
    group = {n: torch.where(owner[n] < 0, offset, owner[n]) for n in params}
    sq = torch.zeros(offset + 1, dtype=torch.float64)
    for n in params:
        sq.scatter_add_(0, group[n].flatten(), (tg[n] ** 2).flatten())
    norms = sq.sqrt() if normalization == 'unit' else sq.sum().sqrt().expand(offset + 1)
    eps = {}
    for n, p in params.items():
        t = p.detach().abs().double() + eta
        norm = norms[group[n]]
        step = rho[group[n]] * t * t * grads[n].double() / norm.clamp_min(1e-300)
        eps[n] = torch.where(norm > 0, step, torch.zeros_like(step)).float()  # no gradient: no step
    return eps


@pytest.mark.parametrize('kind,widths', [('deeplab', False), ('segformer', False),
                                         ('segformer', True)])
def test_perturbation_matches_the_per_unit_formula(kind, widths):
    model = _model(kind)
    _, units = collect_units(model, widths=widths)
    # brute force over a few layers (the rest is free); with widths, the embedding width
    # (attention projection rows) and the heads (its columns) both claim proj.weight
    units = units[:4] + units[-4:] if not widths else [
        u for u in units if u.kind == 'head' or u.name.endswith('3.1.0.ffn.layers.4')]
    gen = torch.Generator().manual_seed(1)
    params = dict(model.named_parameters())
    grads = {n: torch.randn(p.shape, generator=gen) for n, p in params.items()}
    radii = [torch.rand(u.num_units, generator=gen, dtype=torch.float64) * 2 for u in units]
    for normalization in ('global', 'unit'):
        eps = adaptive_perturbation(params, grads, UnitIndex(model, units), radii, 0.3,
                                    eta=0.01, normalization=normalization)
        ref = _reference_eps(model, units, grads, radii, 0.3, 0.01, normalization)
        for n in params:
            assert torch.allclose(eps[n], ref[n], rtol=1e-4, atol=1e-10), (normalization, n)
    # per-unit norm: every unit moved by exactly its radius relative to T = |w| + eta
    index = UnitIndex(model, units)
    moved = torch.zeros(index.num_units + 1, dtype=torch.float64)
    for n, p in params.items():
        ids = index.owner[n].long().flatten() if n in index.owner else \
            torch.full((p.numel(),), -1, dtype=torch.long)
        ids[ids < 0] = index.num_units
        moved.index_add_(0, ids, (eps[n] / (p.detach().abs() + 0.01)).double().flatten() ** 2)
    expected = torch.cat([torch.cat(radii), torch.tensor([0.3], dtype=torch.float64)])
    assert torch.allclose(moved.sqrt(), expected, rtol=1e-4)


def test_uniform_and_global_normalisation():
    model = _model('deeplab')
    _, units = collect_units(model)
    index = UnitIndex(model, units)
    params = dict(model.named_parameters())
    grads = {n: torch.ones_like(p) for n, p in params.items()}
    uniform = adaptive_perturbation(params, grads, index, 0.7, 0.7, normalization='unit')
    listed = adaptive_perturbation(params, grads, index,
                                   [torch.full((u.num_units,), 0.7) for u in units], 0.7,
                                   normalization='unit')
    assert all(torch.equal(uniform[n], listed[n]) for n in params)
    # global: one norm over every entry, so the whole step has norm rho relative to T
    glob = adaptive_perturbation(params, grads, index, 0.7, 0.7, normalization='global')
    total = sum(((glob[n] / (p.detach().abs() + 0.01)) ** 2).sum() for n, p in params.items())
    assert float(total.sqrt()) == pytest.approx(0.7, rel=1e-4)
    with pytest.raises(ValueError, match="normalization must be 'unit' or 'global'"):
        adaptive_perturbation(params, grads, index, 0.7, 0.7, normalization='layer')


def test_an_entry_claimed_by_two_units_belongs_to_the_first():
    model = _model('segformer')
    _, units = collect_units(model)
    head = next(u for u in units if u.kind == 'head')
    pname = f'{head.name}.proj.weight'
    index = UnitIndex(model, [head, head])  # the same entries claimed twice
    assert int(index.owner[pname].max()) < head.num_units  # the second claim lost
    assert index.num_units == 2 * head.num_units


# ------------------------------------------------------------------ the hook
def _fake_runner(model, lr=0.05, **wrapper_kw):
    opt = OptimWrapper(torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9,
                                       weight_decay=1e-3), **wrapper_kw)
    return SimpleNamespace(model=model, iter=0, optim_wrapper=opt, seed=0)


def _loss(model, batch):
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    return sum(v for k, v in losses.items() if 'loss' in k)


def test_hook_step_equals_the_two_pass_reference():
    """w <- SGD(w, grad at w + eps), BN statistics from the clean pass only."""
    model, batch = _model('segformer'), _batch()
    model.train()
    ref = copy.deepcopy(model)
    runner = _fake_runner(model)
    hook = AdaSAPHook(importance=dict(type='L1Importance', normalizer='mean'))
    torch.manual_seed(5)  # MiT's drop path: the same draws on both sides
    hook.before_train_iter(runner, 0, batch)
    model.train_step(batch, runner.optim_wrapper)
    hook.after_train_iter(runner, 0)

    # reference by hand on the copy
    _, units = collect_units(ref)
    params = {n: p for n, p in ref.named_parameters()}
    radii = unit_radii([hook.pruner.importance(u) for u in units], 0.01, 2.0)
    torch.manual_seed(5)
    g1 = dict(zip(params, torch.autograd.grad(_loss(ref, batch), list(params.values()))))
    eps = _reference_eps(ref, units, g1, radii, 1.0, 0.01)
    clean = {n: p.detach().clone() for n, p in params.items()}
    bn_after_clean = {n: b.clone() for n, b in ref.named_buffers()}
    with torch.no_grad():
        for n, p in params.items():
            p.add_(eps[n])
    from npdg.utils.batchnorm import frozen_bn_stats
    with frozen_bn_stats(ref):
        _loss(ref, batch).backward()
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(clean[n])
    torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3).step()
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        assert torch.allclose(p, q, atol=1e-6), n
    for (n, b), (_, c) in zip(model.named_buffers(), ref.named_buffers()):
        assert torch.equal(b, bn_after_clean[n]), n  # the perturbed pass left BN alone
        assert torch.equal(b, c), n
    assert hook.steps == 1 and hook._saved == {} and hook._handle is None


def test_gradient_accumulation_restores_every_iteration_and_steps_once():
    model, batch = _model('deeplab'), _batch()
    model.train()
    runner = _fake_runner(model, accumulative_counts=2)
    hook = AdaSAPHook()
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    runner.optim_wrapper.initialize_count_status(model, 0, 2)
    for it in range(2):
        runner.iter = it
        hook.before_train_iter(runner, it, batch)
        assert any(not torch.equal(p, start[n]) for n, p in model.named_parameters())
        model.train_step(batch, runner.optim_wrapper)
        hook.after_train_iter(runner, it)
        same = all(torch.equal(p, start[n]) for n, p in model.named_parameters())
        assert same == (it == 0)  # clean weights back after the first; one step after two
    assert hook.steps == 2


def test_phases_follow_the_prune_iterations_and_a_prune_rescores():
    from npdg.engine.run_state import run_state
    hook = AdaSAPHook(begin=1, score_interval=3)
    runner = SimpleNamespace(optim_wrapper=None)
    run_state(runner).prune_iters = [4, 8]
    hook.before_train(runner)
    assert [hook.phase(i) for i in (0, 1, 7, 8, 20)] == \
        ['off', 'adaptive', 'adaptive', 'uniform', 'uniform']
    model = _model('segformer')
    runner = _fake_runner(model)
    runner.iter = 1
    first = [r.clone() for r in hook.current_radii(runner, model)]
    assert hook.scored_iter == 1
    runner.iter = 3
    assert hook.current_radii(runner, model) is hook.radii and hook.scored_iter == 1
    runner.iter = 4
    hook.current_radii(runner, model)
    assert hook.scored_iter == 4
    hook.on_pruned(runner)
    runner.iter = 5
    hook.current_radii(runner, model)
    assert hook.scored_iter == 5 and len(hook.radii) == len(first)
    runner.iter = 8
    assert hook.current_radii(runner, model) == hook.rho


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match='rho_min <= rho_max'):
        AdaSAPHook(rho_min=3.0)
    with pytest.raises(ValueError, match='normalization'):
        AdaSAPHook(normalization='layer')
    with pytest.raises(ValueError, match='score_interval'):
        AdaSAPHook(score_interval=0)
    with pytest.raises(KeyError, match='Unknown importance'):
        AdaSAPHook(importance=dict(type='NoSuchImportance'))
    with pytest.raises(ValueError, match='unknown scoring keys'):
        AdaSAPHook(scoring=dict(batches=2))


# ------------------------------------------------- in a runner: prune, resume, AMP
def _hooks(importance):
    return [dict(type='AdaSAPHook', importance=importance, score_interval=3),
            dict(type='UnitPruningHook', prune_iters=[4], ratio=0.3, threshold=None,
                 importance=importance, flops_shape=(3, 64, 64)),
            dict(type='PrunedCheckpointHook'), dict(type='RNGStateHook')]


def test_runner_prunes_and_resumes_bit_exactly(tmp_path):
    # radii scored at 0 and 3, prune after 4, uniform from 4; resumed at 2 with the radii of 0.
    # One resume test for the hook, with a data-driven criterion: its scoring draws batches,
    # so the resume must restore the radii and the scoring RNG, not only the weights.
    importance = dict(type='TaylorImportance')
    cfg = runner_cfg(tmp_path / 'a', deeplab_r18_cfg(), max_iters=5,
                     custom_hooks=_hooks(importance), checkpoint_interval=2)
    full = NpdgRunner.from_cfg(cfg)
    full.train()
    hook = next(h for h in full.hooks if isinstance(h, AdaSAPHook))
    assert hook.steps == 5 and hook.uniform_after == 4 and hook.scored_iter == 3
    cfg = runner_cfg(tmp_path / 'a', deeplab_r18_cfg(), max_iters=5,
                     custom_hooks=_hooks(importance), checkpoint_interval=2)
    cfg.resume, cfg.load_from = True, str(tmp_path / 'a' / 'iter_2.pth')
    resumed = NpdgRunner.from_cfg(cfg)
    resumed.train()
    for (n, p), (_, q) in zip(full.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.equal(p, q), n


def test_runner_under_cpu_bfloat16_amp(tmp_path):
    cfg = runner_cfg(tmp_path / 'amp', segformer_b0_cfg(), max_iters=5,
                     custom_hooks=_hooks(dict(type='L1Importance')))
    cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
    runner = NpdgRunner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, AdaSAPHook))
    assert hook.steps == 5 and hook.skipped == 0
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_adasap_composes_with_the_subgradient_sparsity_term():
    """SGD on grad L(w + eps) + s * omega * sign(gamma at w); eps from grad L(w) alone."""
    from npdg.hooks import SensitivitySparsityHook
    from npdg.pruning.units import unit_scales
    from npdg.utils.batchnorm import frozen_bn_stats
    model, batch = _model('deeplab'), _batch()
    model.train()
    for m in model.modules():  # no dropout: the two paths need not draw its masks in one order
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = 0.0
    with torch.no_grad():  # one layer's scales near 0: sign(gamma) differs at w + eps
        model.backbone.layer1[0].bn1.weight.copy_(torch.randn(64) * 1e-6)
    ref = copy.deepcopy(model)
    runner = _fake_runner(model)
    s = 0.5
    sparsity = SensitivitySparsityHook(s=s, mode='subgradient', reweight=False)
    hook = AdaSAPHook(importance=dict(type='L1Importance', normalizer='mean'))
    sparsity.before_train_iter(runner, 0, batch)  # the sparsity hook runs first
    torch.manual_seed(5)  # dropout: the same draws on both sides
    hook.before_train_iter(runner, 0, batch)
    model.train_step(batch, runner.optim_wrapper)
    hook.after_train_iter(runner, 0)
    sparsity.after_train_iter(runner, 0)

    _, units = collect_units(ref)
    params = {n: p for n, p in ref.named_parameters()}
    radii = unit_radii([hook.pruner.importance(u) for u in units], 0.01, 2.0)
    torch.manual_seed(5)
    g1 = dict(zip(params, torch.autograd.grad(_loss(ref, batch), list(params.values()))))
    eps = _reference_eps(ref, units, g1, radii, 1.0, 0.01)
    clean = {n: p.detach().clone() for n, p in params.items()}
    with torch.no_grad():
        for n, p in params.items():
            p.add_(eps[n])
    with frozen_bn_stats(ref):
        _loss(ref, batch).backward()
    scale_ids = {id(p) for p in unit_scales(ref).values()}
    flips = 0
    with torch.no_grad():
        for n, p in params.items():
            if id(p) in scale_ids:
                p.grad += s * torch.sign(clean[n])
                flips += int((torch.sign(clean[n]) != torch.sign(p)).sum())
            p.copy_(clean[n])
    assert flips > 0  # the test can tell gamma at w from gamma at w + eps
    torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3).step()
    diff = max(float((p - q).abs().max())
               for p, q in zip(model.parameters(), ref.parameters()))
    # float32 noise of the two paths is ~3e-6 here (s = 0 gives the same); the subgradient
    # in AdaSAP's own pass, or taken at w + eps, moves the weights by ~0.65
    assert diff < 1e-4
