"""NPDG hooks in real mmengine runs: perturbation, statistics, sparsity, pruning."""
import copy
import glob
import json
import os.path as osp

import pytest
import torch
from conftest import build, deeplab_r18_cfg, runner_cfg, segformer_b0_cfg
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

import npdg  # noqa: F401
from npdg.engine.run_state import run_state
from npdg.engine.runner import NpdgRunner
from npdg.hooks import (
    SensitivitySparsityHook,
    SensitivityStatisticsHook,
    StylePerturbationHook,
    UnitPruningHook,
)
from npdg.utils.checkpoint_io import load_from_local

NPDG_HOOKS = [
    dict(type='StylePerturbationHook', perturbation=dict(type='AdvStyle'), stylized_ratio=0.5),
    dict(type='SensitivityStatisticsHook', interval=2, num_images=2, num_styles=3,
         num_positions=32),
    dict(type='SensitivitySparsityHook', s=1e-2),
    dict(type='UnitPruningHook', prune_iters=[3], ratio=0.3, threshold=None,
         trace_shape=(3, 64, 64), flops_shape=(3, 64, 64)),
    dict(type='PrunedCheckpointHook'),
    dict(type='RNGStateHook'),
]


class _Crash(RuntimeError):
    pass


@HOOKS.register_module(force=True)
class LRRecorderHook(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.lrs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.optimizer.param_groups[0]['lr'])


@HOOKS.register_module(force=True)
class CrashHook(Hook):
    priority = 'LOWEST'

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise _Crash(self.at)


def _params(model):
    model = model.module if hasattr(model, 'module') else model
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- bad config
@pytest.mark.parametrize('make, error', [
    (lambda: UnitPruningHook(prune_iters=[5], ratio=1.0), ValueError),
    (lambda: UnitPruningHook(prune_iters=[5], ratio=-0.1), ValueError),
    (lambda: UnitPruningHook(prune_iters=[5], unit_types=['filter']), ValueError),
    (lambda: UnitPruningHook(prune_iters=[5], importance=dict(type='Nope')), KeyError),
    (lambda: UnitPruningHook(prune_iters=[0]), ValueError),
    (lambda: SensitivityStatisticsHook(lam=1.5), ValueError),
    (lambda: SensitivityStatisticsHook(lam=-0.1), ValueError),
    (lambda: StylePerturbationHook(perturbation=dict(type='Nope')), KeyError),
    (lambda: SensitivitySparsityHook(s=-1), ValueError),
])
def test_bad_configuration_fails_at_build_time(make, error):
    with pytest.raises(error):
        make()


def test_bad_configuration_through_config_fails_before_training(tmp_path):
    cfg = runner_cfg(tmp_path, deeplab_r18_cfg(), max_iters=4,
                     custom_hooks=[dict(type='UnitPruningHook', prune_iters=[10])])
    with pytest.raises(ValueError, match='beyond train_cfg.max_iters=4'):
        NpdgRunner.from_cfg(cfg).train()
    assert not glob.glob(str(tmp_path / '*.pth'))
    cfg = runner_cfg(tmp_path, deeplab_r18_cfg(), custom_hooks=[
        dict(type='SensitivityStatisticsHook', lam=2.0)])
    with pytest.raises(ValueError, match='lambda|lam'):
        NpdgRunner.from_cfg(cfg)


def test_model_with_nothing_prunable_is_refused(tmp_path):
    model = segformer_b0_cfg()
    model['backbone']['num_heads'] = [1, 1, 1, 1]
    model['decode_head']['norm_cfg'] = None
    model['decode_head']['in_channels'] = [32, 32, 32, 32]  # MiT widths = 32 * heads
    cfg = runner_cfg(tmp_path, model, max_iters=4,
                     custom_hooks=[dict(type='UnitPruningHook', prune_iters=[2])])
    with pytest.raises(ValueError, match='nothing prunable'):
        NpdgRunner.from_cfg(cfg).train()


# ---------------------------------------------------------------- hooks alone
class _FakeRunner:
    def __init__(self, model, it=0, hooks=()):
        self.model, self.iter, self.hooks = model, it, list(hooks)


def _raw_batch(n=4, size=64):
    from conftest import register_random_dataset
    register_random_dataset()
    from mmseg.registry import DATASETS
    ds = DATASETS.build(dict(type='RandomSegDataset', length=n, size=size))
    items = [ds[i] for i in range(n)]
    return dict(inputs=[x['inputs'] for x in items], data_samples=[x['data_samples'] for x in items])


def test_style_perturbation_replaces_a_share_of_the_batch():
    model = build(deeplab_r18_cfg()).train()
    bn = model.backbone.stem[1]
    before_bn = bn.running_mean.clone()
    batch = _raw_batch(4)
    original = [x.clone() for x in batch['inputs']]
    labels = [s.gt_sem_seg.data.clone() for s in batch['data_samples']]
    hook = StylePerturbationHook(stylized_ratio=0.5, ascent_steps=1)
    torch.manual_seed(1)  # dropout inside the ascent uses the global generator
    hook.before_train_iter(_FakeRunner(model), 0, batch)
    changed = [not torch.equal(a.float(), b.float()) for a, b in zip(original, batch['inputs'])]
    assert sum(changed) == 2
    for img, orig in zip(batch['inputs'], original):
        assert img.shape == orig.shape and img.min() >= 0 and img.max() <= 255
    assert all(torch.equal(s.gt_sem_seg.data, l) for s, l in zip(batch['data_samples'], labels))
    assert torch.equal(bn.running_mean, before_bn)  # the ascent leaves BN statistics alone
    assert all(p.grad is None for p in model.parameters())
    # deterministic per iteration (given the global torch RNG state)
    batch2 = _raw_batch(4)
    torch.manual_seed(1)
    hook.before_train_iter(_FakeRunner(model), 0, batch2)
    assert all(torch.equal(a, b) for a, b in zip(batch['inputs'], batch2['inputs']))


def test_sparsity_hook_adds_reweighted_subgradient():
    model = build(deeplab_r18_cfg()).train()
    batch = _raw_batch(2)

    def grads(hook=None, omega=None):
        m = copy.deepcopy(model)
        runner = _FakeRunner(m)
        runner.optim_wrapper = None
        if hook is not None:
            run_state(runner).omega = omega  # what the statistics hook publishes
            hook.before_train_iter(runner, 0, batch)
        data = m.data_preprocessor(copy.deepcopy(batch), True)
        losses = m.loss(data['inputs'], data['data_samples'])
        torch.manual_seed(0)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        return {n: mod.weight.grad.clone() for n, mod in m.named_modules()
                if isinstance(mod, torch.nn.BatchNorm2d)}, m

    torch.manual_seed(0)
    ref, _ = grads()
    name = 'backbone.layer1.0.bn1'
    omega = {name: torch.linspace(0.5, 1.5, 64)}
    torch.manual_seed(0)
    got, m = grads(SensitivitySparsityHook(s=0.01, mode="subgradient"), omega)
    gamma = dict(m.named_modules())[name].weight.detach()
    assert torch.allclose(got[name], ref[name] + 0.01 * omega[name] * torch.sign(gamma), atol=1e-6)
    other = 'backbone.layer2.0.bn1'  # no omega yet -> uniform 1
    gamma = dict(m.named_modules())[other].weight.detach()
    assert torch.allclose(got[other], ref[other] + 0.01 * torch.sign(gamma), atol=1e-6)


def test_statistics_hook_feeds_bn_inputs_normalised_by_running_stats():
    model = build(deeplab_r18_cfg()).train()
    with torch.no_grad():  # non-trivial running statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    hook = SensitivityStatisticsHook(num_images=2, num_styles=3, num_positions=10 ** 6)
    runner = _FakeRunner(model)
    hook.perturbation = hook._renderer(runner)
    hook.attach(model)
    seen = {}
    name = 'backbone.layer2.0.bn1'
    bn = dict(model.named_modules())[name]
    h = bn.register_forward_hook(lambda mod, a, o: seen.update(x=a[0].detach().clone()))
    hook.collect(runner, _raw_batch(2), iteration=0)
    h.remove()
    x = seen['x']
    xn = (x - bn.running_mean.view(1, -1, 1, 1)) / (bn.running_var + bn.eps).sqrt().view(1, -1, 1, 1)
    feats = xn.reshape(2, 3, xn.shape[1], -1).double()  # (B, K, C, N), all positions kept
    unary = feats.var(dim=1, unbiased=False).mean(dim=(0, 2))
    assert torch.allclose(hook.stats[name].unary(), unary, rtol=1e-6, atol=1e-9)
    assert model.training  # modes restored
    hook.refresh(runner)
    assert set(hook.scores) >= {name}
    w = hook.scores[name]['w']
    assert w.min() >= 0 and w.max() <= 1
    omega = torch.cat(list(hook.omega.values()))
    assert abs(omega.mean().item() - 1) < 1e-6


# ---------------------------------------------------------------- full runs
def test_npdg_run_prunes_keeps_schedule_and_reloads(tmp_path):
    cfg = runner_cfg(tmp_path / 'npdg', deeplab_r18_cfg(), max_iters=6,
                     custom_hooks=NPDG_HOOKS + [dict(type='LRRecorderHook')])
    runner = NpdgRunner.from_cfg(cfg)
    before = _params(runner.model)
    runner.train()
    after = _params(runner.model)
    assert after < before
    plain = NpdgRunner.from_cfg(runner_cfg(tmp_path / 'plain', deeplab_r18_cfg(), max_iters=6,
                                       custom_hooks=[dict(type='LRRecorderHook')]))
    plain.train()
    lrs = [h for h in runner.hooks if type(h).__name__ == 'LRRecorderHook'][0].lrs
    ref = [h for h in plain.hooks if type(h).__name__ == 'LRRecorderHook'][0].lrs
    assert lrs == pytest.approx(ref, rel=1e-12)
    report = json.load(open(tmp_path / 'npdg' / 'pruning' / 'pruning_report.json'))
    step = report['steps'][0]
    assert step['iter'] == 3 and step['gflops_after'] < step['gflops_before']
    assert step['removed'] == int(0.3 * step['total'])
    layer = step['layers'][0]
    assert {'name', 'units_before', 'units_after', 'removed', 'importance', 'unary', 'binary',
            'w'} <= set(layer)
    assert osp.isfile(tmp_path / 'npdg' / 'pruning' / 'pruning_iter_3.png')
    # the pruned checkpoint rebuilds from the unpruned config, strictly and bit-exactly
    from mmengine.config import Config

    from npdg.utils.model import build_segmentor
    loaded = build_segmentor(Config(dict(model=deeplab_r18_cfg())),
                             str(tmp_path / 'npdg' / 'iter_6.pth'))
    trained = runner.model.eval()
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        assert torch.equal(loaded(x, mode='tensor'), trained(x, mode='tensor'))


def test_resume_before_the_prune_reaches_the_same_model(tmp_path):
    def cfg(work, crash=None):
        hooks = NPDG_HOOKS + ([dict(type='CrashHook', at=crash)] if crash else [])
        return runner_cfg(work, deeplab_r18_cfg(), max_iters=6, custom_hooks=hooks,
                          checkpoint_interval=2)

    NpdgRunner.from_cfg(cfg(tmp_path / 'full')).train()
    with pytest.raises(_Crash):
        NpdgRunner.from_cfg(cfg(tmp_path / 'cut', crash=3)).train()  # checkpoint at 2, prune at 3
    resumed = cfg(tmp_path / 'cut')
    resumed.resume = True
    NpdgRunner.from_cfg(resumed).train()
    a = load_from_local(str(tmp_path / 'full' / 'iter_6.pth'))
    b = load_from_local(str(tmp_path / 'cut' / 'iter_6.pth'))
    assert a['meta']['npdg']['structure'] == b['meta']['npdg']['structure']
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    # and a checkpoint taken after the prune continues with the pruned model
    after = cfg(tmp_path / 'cut')
    after.resume = True
    after.load_from = str(tmp_path / 'cut' / 'iter_4.pth')
    after.train_cfg.max_iters = 6
    runner = NpdgRunner.from_cfg(after)
    runner.train()
    assert _params(runner.model) == sum(v.numel() for k, v in b['state_dict'].items()
                                        if 'running' not in k and 'num_batches' not in k)


def test_segformer_heads_and_channels_pruned_in_a_run(tmp_path):
    hooks = copy.deepcopy(NPDG_HOOKS)
    cfg = runner_cfg(tmp_path, segformer_b0_cfg(), max_iters=4, custom_hooks=hooks,
                     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01))
    runner = NpdgRunner.from_cfg(cfg)
    runner.train()
    from npdg.models import head_layout
    heads = {k: v['num_heads'] for k, v in head_layout(runner.model).items()}
    assert sum(heads.values()) < 1 + 2 + 5 + 8
    assert min(heads.values()) >= 1


def test_statistics_stop_at_the_last_prune_step_unless_told_otherwise(deeplab):
    runner = _FakeRunner(deeplab)
    run_state(runner).prune_iters = [4, 8]
    hook = SensitivityStatisticsHook(interval=2)
    hook.before_train(runner)
    assert [i for i in range(12) if hook.collecting_at(i)] == [0, 2, 4, 6]
    told = SensitivityStatisticsHook(interval=2, end=11)
    told.before_train(runner)
    assert [i for i in range(12) if told.collecting_at(i)] == [0, 2, 4, 6, 8, 10]
    alone = SensitivityStatisticsHook(interval=2)
    alone.before_train(_FakeRunner(deeplab))  # a run that does not prune
    assert [i for i in range(12) if alone.collecting_at(i)] == [0, 2, 4, 6, 8, 10]


# ------------------------------------------- statistics across refreshes, styles
def _sums(hook, name):
    return {k: v.clone() for k, v in hook.stats[name].sums().items()}


@pytest.mark.parametrize('decay', [1.0, 0.5, 0.0])
def test_statistics_sums_carry_across_refreshes_with_their_decay(decay):
    """decay=1 is the cumulative estimate: two refreshes see what one pass over both saw."""
    model = build(deeplab_r18_cfg()).train()
    runner = _FakeRunner(model)
    name = 'backbone.layer2.0.bn1'
    hook = SensitivityStatisticsHook(num_images=2, num_styles=3, num_positions=16,
                                     styles='random', decay=decay)
    ref = SensitivityStatisticsHook(num_images=2, num_styles=3, num_positions=16,
                                    styles='random')
    for h in (hook, ref):
        h.perturbation = h._renderer(runner)
        h.attach(model)
    b0, b1 = _raw_batch(2), _raw_batch(2)
    hook.collect(runner, b0, iteration=0)
    hook.refresh(runner)
    ref.collect(runner, b0, iteration=0)
    first = _sums(ref, name)
    hook.collect(runner, b1, iteration=1)
    ref.stats.reset()
    ref.collect(runner, b1, iteration=1)
    second = _sums(ref, name)
    got = _sums(hook, name)
    for key in got:
        assert torch.allclose(got[key], decay * first[key] + second[key], rtol=1e-12), key
    hook.refresh(runner)
    if decay == 1.0:  # the scores are those of one pass over both batches
        both = SensitivityStatisticsHook(num_images=2, num_styles=3, num_positions=16,
                                         styles='random')
        both.perturbation = both._renderer(runner)
        both.attach(model)
        both.collect(runner, b0, iteration=0)
        both.collect(runner, b1, iteration=1)
        both.refresh(runner)
        assert torch.allclose(hook.scores[name]['w'], both.scores[name]['w'])
    for h in (hook, ref):
        h.detach()


def test_adversarial_scoring_styles_raise_the_loss_and_leave_bn_alone():
    model = build(deeplab_r18_cfg()).train()
    runner = _FakeRunner(model)
    batch = model.data_preprocessor(_raw_batch(2), True)
    from npdg.perturbation import denormalize, normalize
    from npdg.perturbation.base import norm_args_from_preprocessor
    norm = norm_args_from_preprocessor(model.data_preprocessor)
    rgb = denormalize(batch['inputs'], **norm).clamp(0, 255)
    samples = [s for s in batch['data_samples'] for _ in range(3)]
    running = model.backbone.stem[1].running_mean.clone()
    losses = {}
    for styles in ('random', 'adversarial'):
        hook = SensitivityStatisticsHook(num_styles=3, styles=styles, ascent_steps=2)
        hook.perturbation = hook._renderer(runner)
        hook._gen = torch.Generator().manual_seed(5)  # the same initial draw for both
        model.eval()
        out = hook.render_styles(runner, model, rgb, batch['data_samples'], norm)
        assert out.shape == (6, *rgb.shape[1:])
        with torch.no_grad():
            loss = model.loss(normalize(out, **norm), samples)
        losses[styles] = float(sum(v for k, v in loss.items() if 'loss' in k))
    assert losses['adversarial'] > losses['random']
    assert torch.equal(model.backbone.stem[1].running_mean, running)
    assert all(p.grad is None for p in model.parameters())


def test_omega_is_normalised_per_layer_by_default():
    model = build(deeplab_r18_cfg()).train()
    runner = _FakeRunner(model)
    hook = SensitivityStatisticsHook(num_images=2, num_styles=3, num_positions=16)
    assert hook.omega_scope == 'layer' and hook.styles == 'random' and hook.decay == 1.0
    hook.perturbation = hook._renderer(runner)
    hook.attach(model)
    hook.collect(runner, _raw_batch(2), iteration=0)
    hook.refresh(runner)
    for name, omega in hook.omega.items():
        assert abs(float(omega.mean()) - 1) < 1e-6, name


@pytest.mark.parametrize('kwargs', [dict(decay=1.5), dict(styles='hard'), dict(ascent_steps=-1)])
def test_statistics_options_are_checked(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SensitivityStatisticsHook(**kwargs)
