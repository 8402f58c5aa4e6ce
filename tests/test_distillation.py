"""Pixel-wise distillation: the closed-form gradient, the hook's gradient, a pruned run."""
import math
import types

import pytest
import torch
from conftest import build, deeplab_r18_cfg, runner_cfg
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

import npdg  # noqa: F401
from npdg.engine.runner import NpdgRunner
from npdg.hooks import DistillationHook
from npdg.pruning.distill import pixel_kd_grad, pixel_kd_loss


@pytest.mark.parametrize('temperature,weight', [(1.0, 1.0), (4.0, 0.5)])
def test_closed_form_gradient_matches_autograd(temperature, weight):
    g = torch.Generator().manual_seed(0)
    student = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64) * 3
    teacher = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64) * 3
    s = student.clone().requires_grad_(True)
    loss = pixel_kd_loss(s.float(), teacher, temperature, weight)
    loss.backward()
    grad, value = pixel_kd_grad(student, teacher, temperature, weight)
    assert value == pytest.approx(loss.item(), rel=1e-5)
    assert torch.allclose(grad.double(), s.grad, atol=1e-6)


def test_loss_is_the_mean_pixel_kl_by_brute_force():
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(1, 3, 2, 2, generator=g), torch.randn(1, 3, 2, 2, generator=g)
    t = 2.0
    total = 0.0
    for i in range(2):
        for j in range(2):
            zs = [math.exp(float(student[0, c, i, j]) / t) for c in range(3)]
            zt = [math.exp(float(teacher[0, c, i, j]) / t) for c in range(3)]
            ps, pt = [z / sum(zs) for z in zs], [z / sum(zt) for z in zt]
            total += sum(pt[c] * math.log(pt[c] / ps[c]) for c in range(3))
    expected = 0.7 * t * t * total / 4
    assert float(pixel_kd_loss(student, teacher, t, 0.7)) == pytest.approx(expected, rel=1e-5)
    assert float(pixel_kd_loss(teacher, teacher, t, 0.7)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match='one shape'):
        pixel_kd_loss(student, teacher[:, :2])


def _teacher_file(tmp_path):
    teacher = build(deeplab_r18_cfg())   # the students' init, moved: a different function
    g = torch.Generator().manual_seed(123)
    state = {k: v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
             for k, v in teacher.state_dict().items()}
    path = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': state}, path)
    return path


def _batch(model):
    from conftest import register_random_dataset
    from mmengine.registry import DATASETS
    register_random_dataset()
    ds = DATASETS.build(dict(type='RandomSegDataset', length=2))
    data = model.data_preprocessor(dict(inputs=[ds[i]['inputs'] for i in range(2)],
                                        data_samples=[ds[i]['data_samples'] for i in range(2)]),
                                   training=True)
    return data['inputs'], data['data_samples']


def _grads(model, inputs, samples, extra=None):
    model.zero_grad()
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    if extra is not None:
        total = total + extra(model, inputs)
    total.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_hook_adds_exactly_the_distillation_gradient(tmp_path):
    model = build(deeplab_r18_cfg()).eval()   # eval: no dropout, fixed BN, same function twice
    inputs, samples = _batch(model)
    hook = DistillationHook(_teacher_file(tmp_path), weight=0.8, temperature=2.0, begin=0)
    runner = types.SimpleNamespace(iter=0, optim_wrapper=None, message_hub=None)
    hook._runner, hook.start = runner, 0
    hook.teacher = hook.build_teacher(deeplab_r18_cfg(), model)
    teacher = hook.teacher

    def kd(m, x):
        with torch.no_grad():
            t = teacher.decode_head(teacher.extract_feat(x))
        return pixel_kd_loss(m.decode_head(m.extract_feat(x)), t, 2.0, 0.8)

    plain = _grads(model, inputs, samples)
    reference = _grads(model, inputs, samples, extra=kd)
    hook.attach(model)
    hook.before_train_iter(runner, 0)
    hooked = _grads(model, inputs, samples)
    assert hook._applied and hook.last_loss > 0
    assert set(hooked) == set(reference)
    moved = [n for n in reference if not torch.allclose(reference[n], plain[n], atol=1e-7)]
    assert moved  # the distillation term changes the gradient ...
    for name in reference:  # ... by exactly its own gradient
        assert torch.allclose(hooked[name], reference[name], atol=1e-6, rtol=1e-4), name
    # a copy of the model (FLOPs search, EMA) copies neither the hook nor its teacher, and
    # its taps do nothing
    import copy
    hook.before_train_iter(runner, 0)
    clone = copy.deepcopy(model)   # copied while armed
    copied = _grads(clone, inputs, samples)
    assert not hook._applied
    for name in plain:
        assert torch.allclose(copied[name], plain[name], atol=1e-7), name
    hook._armed = False
    # outside the window (not armed) the gradient is the plain one
    runner.iter = -1
    hook.start = 5
    hook.before_train_iter(runner, 0)
    again = _grads(model, inputs, samples)
    for name in plain:
        assert torch.allclose(again[name], plain[name], atol=1e-7), name


def test_pruned_run_distils_only_the_fine_tune(tmp_path):
    # a FLOPs budget: the pruning hook searches on copies of the distilled model
    hooks = [dict(type='UnitPruningHook', prune_iters=[3], ratio=None, threshold=None,
                  target_flops_ratio=0.75,
                  importance=dict(type='L1Importance', normalizer='mean'),
                  trace_shape=(3, 64, 64), flops_shape=(3, 64, 64)),
             dict(type='DistillationHook', teacher_checkpoint=_teacher_file(tmp_path)),
             dict(type='PrunedCheckpointHook')]
    runner = NpdgRunner.from_cfg(runner_cfg(tmp_path / 'run', deeplab_r18_cfg(), max_iters=6,
                                            custom_hooks=hooks))
    runner.train()
    hook = [h for h in runner.hooks if isinstance(h, DistillationHook)][0]
    assert hook.start == 3
    history = runner.message_hub.get_scalar('train/loss_kd').data[0]
    assert len(history) == 3 and min(history) > 0  # iterations 3, 4, 5 (after the prune)
    # the teacher stayed whole while the student was pruned
    student = sum(p.numel() for p in runner.model.parameters())
    assert hook.teacher is None  # dropped after the run
    assert student < sum(p.numel() for p in build(deeplab_r18_cfg()).parameters())


@HOOKS.register_module(force=True)
class _LateIterHook(Hook):
    priority = 'LOWEST'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        pass


def test_a_hook_after_it_in_before_train_iter_is_refused(tmp_path):
    hooks = [dict(type='DistillationHook', teacher_checkpoint=_teacher_file(tmp_path), begin=0),
             dict(type='_LateIterHook')]
    runner = NpdgRunner.from_cfg(runner_cfg(tmp_path / 'run', deeplab_r18_cfg(), max_iters=2,
                                            custom_hooks=hooks))
    with pytest.raises(RuntimeError, match='_LateIterHook'):
        runner.train()


def test_bad_settings_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match='teacher_checkpoint'):
        runner = NpdgRunner.from_cfg(runner_cfg(
            tmp_path / 'a', deeplab_r18_cfg(), max_iters=2,
            custom_hooks=[dict(type='DistillationHook', teacher_checkpoint='missing.pth')]))
        runner.train()
    with pytest.raises(RuntimeError, match="begin='last_prune'"):
        runner = NpdgRunner.from_cfg(runner_cfg(
            tmp_path / 'b', deeplab_r18_cfg(), max_iters=2,
            custom_hooks=[dict(type='DistillationHook',
                               teacher_checkpoint=_teacher_file(tmp_path))]))
        runner.train()
    # weight 0 is off: no teacher file needed, nothing distilled, the run trains as without it
    off = NpdgRunner.from_cfg(runner_cfg(
        tmp_path / 'c', deeplab_r18_cfg(), max_iters=2,
        custom_hooks=[dict(type='DistillationHook', teacher_checkpoint='missing.pth', weight=0)]))
    off.train()
    assert [h for h in off.hooks if isinstance(h, DistillationHook)][0].teacher is None
    assert 'train/loss_kd' not in off.message_hub.log_scalars
    for bad in (dict(weight=-1), dict(temperature=0), dict(begin='later'), dict(begin=True)):
        with pytest.raises(ValueError):
            DistillationHook('t.pth', **bad)
