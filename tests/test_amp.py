"""Mixed precision (--amp) with every npdg hook: CPU bfloat16 end to end, GradScaler in-process."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from conftest import TinyNet, deeplab_r18_cfg, runner_cfg
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmseg.registry import HOOKS

import npdg  # noqa: F401
from npdg.amp import CPUAmpOptimWrapper, enable_amp, training_autocast
from npdg.engine.runner import NpdgRunner
from npdg.hooks import SensitivitySparsityHook
from npdg.utils.checkpoint_io import load_from_local

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'configs', 'demo', 'npdg_deeplab_r18_synthetic.py')
FAST = ['batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0', 'complexity_hook.input_shape=[3,64,64]',
        'pruning_hook.flops_shape=[3,64,64]', 'train_cfg.val_interval=100',
        'prune_ratio=0.5', 'prune_iters=[2]', 'stats_interval=2', 'stats_batches=2',
        'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=10']


# ------------------------------------------------------------ the wrapper and --amp
def _cfg(kind='OptimWrapper', **extra):
    return Config(dict(optim_wrapper=dict(type=kind, optimizer=dict(type='SGD', lr=0.1),
                                          **extra)))


def test_enable_amp_picks_the_wrapper_of_the_device():
    cpu, gpu = _cfg(), _cfg()
    assert enable_amp(cpu, cuda=False) == 'CPUAmpOptimWrapper'
    assert cpu.optim_wrapper.type == 'CPUAmpOptimWrapper' and 'loss_scale' not in cpu.optim_wrapper
    assert enable_amp(gpu, cuda=True) == 'AmpOptimWrapper'
    assert gpu.optim_wrapper.loss_scale == 'dynamic'
    with pytest.raises(ValueError, match=r"optim_wrapper.type='AmpOptimWrapper' needs CUDA"):
        enable_amp(_cfg('AmpOptimWrapper'), cuda=False)
    with pytest.raises(ValueError, match='optim_wrapper.type'):
        enable_amp(_cfg('OptimWrapperDict'), cuda=False)


def test_cpu_wrapper_autocasts_to_bfloat16_and_keeps_float32_state():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    cfg = dict(type='CPUAmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    with DefaultScope.overwrite_default_scope('mmseg'):  # the registry the runner uses
        wrapper = build_optim_wrapper(net, cfg)
    assert type(wrapper) is CPUAmpOptimWrapper
    x = torch.randn(2, 3, 8, 8)
    with wrapper.optim_context(net):
        out = net(x)
    assert out.dtype == torch.bfloat16
    with torch.no_grad():  # the same forward in float32 differs only by bfloat16 rounding
        ref = net(x)
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()
    wrapper.update_params(out.float().square().mean())
    assert all(p.dtype == torch.float32 and p.grad is None for p in net.parameters())
    state = wrapper.state_dict()
    assert set(state) == {'state', 'param_groups'}  # the optimizer's, no loss scaler
    assert all(s['momentum_buffer'].dtype == torch.float32 for s in state['state'].values())
    with pytest.raises(ValueError, match=r"optim_wrapper.dtype='float16'.*bfloat16"):
        CPUAmpOptimWrapper(dtype='float16', optimizer=wrapper.optimizer)
    with pytest.raises(ValueError, match=r'optim_wrapper.loss_scale.*Remove'):
        CPUAmpOptimWrapper(loss_scale='dynamic', optimizer=wrapper.optimizer)


# ------------------------------------------------ tools/train.py --amp on the CPU demo
def _train(workspace, work, *options, resume=False):
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), DEMO, '--amp', '--work-dir',
         str(work)] + (['--resume'] if resume else []) + ['--cfg-options', *FAST, *options],
        cwd=workspace, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return log


@pytest.fixture(scope='module')
def amp_run(workspace):
    """4 iterations with --amp (prune after 2), then --resume to 6."""
    work = workspace / 'amp_run'
    first = _train(workspace, work, 'max_iters=4')
    second = _train(workspace, work, 'max_iters=6', resume=True)
    return work, first, second


def test_amp_run_uses_bfloat16_in_every_hook(amp_run):
    work, log, _ = amp_run
    assert '[npdg] --amp: optim_wrapper.type=CPUAmpOptimWrapper' in log
    dumped = Config.fromfile(str(work / osp.basename(DEMO)))
    assert dumped.optim_wrapper.type == 'CPUAmpOptimWrapper'
    # the perturbation's ascent ran its segmentor forward under the training autocast
    assert '[npdg] style ascent: segmentor forward under autocast (bfloat16), loss scale 1' in log
    # statistics: bfloat16 activations observed, float64 sums (refreshed once, at iter 2)
    refreshes = re.findall(r'sensitivity statistics refreshed at iter (\d+).*?'
                           r'from (\S+) activations into (\S+) sums', log)
    assert refreshes == [('2', 'bfloat16', 'float64')]
    sums = load_from_local(str(work / 'iter_1.pth'))['meta']['npdg']['statistics']['stats']
    assert len(sums) > 30  # every BN layer, mid-window (collected at iter 1, not yet reset)
    for name, layer in sums.items():
        assert all(v.dtype == torch.float64 for v in layer.values()), name
        assert layer['count'] > 0 and bool(torch.isfinite(layer['cross']).all()), name
    assert sum(float(layer['var_sum'].sum()) for layer in sums.values()) > 0


def test_amp_checkpoint_reloads_bit_exactly_smaller_with_optimizer_state(amp_run):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from npdg.analysis import segmentor_complexity
    from npdg.pruning.structure import load_pruned_checkpoint
    work, _, _ = amp_run
    register_all_modules()
    cfg = Config.fromfile(str(work / osp.basename(DEMO)))
    ckpt = load_from_local(str(work / 'iter_4.pth'))
    fresh, model = MODELS.build(cfg.model), MODELS.build(cfg.model)
    load_pruned_checkpoint(model, str(work / 'iter_4.pth'))
    state = model.state_dict()
    assert state.keys() == ckpt['state_dict'].keys()
    for key, value in ckpt['state_dict'].items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), key
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    before, after = (segmentor_complexity(m, (3, 64, 64)) for m in (fresh, model))
    assert after['gflops'] < 0.8 * before['gflops']
    assert after['params'] < 0.8 * before['params']
    # the optimizer wrapper's state: SGD momentum sliced to the pruned shapes, no scaler
    optim = ckpt['optimizer']
    assert 'loss_scaler' not in optim
    buffers = sorted(tuple(s['momentum_buffer'].shape) for s in optim['state'].values())
    params = sorted(tuple(p.shape) for p in model.parameters() if p.requires_grad)
    assert buffers == params
    assert ckpt['meta']['iter'] == 4


def test_amp_run_resumes_with_the_pruned_model(amp_run):
    work, _, log = amp_run
    assert 'resumed epoch: 0, iter: 4' in log
    assert "applied the checkpoint's pruned structure" in log
    assert '[npdg] --amp: optim_wrapper.type=CPUAmpOptimWrapper' in log
    a = load_from_local(str(work / 'iter_4.pth'))
    b = load_from_local(str(work / 'iter_6.pth'))
    assert b['meta']['iter'] == 6
    assert {k: v.shape for k, v in a['state_dict'].items()} == \
        {k: v.shape for k, v in b['state_dict'].items()}
    moved = [k for k, v in a['state_dict'].items()
             if v.is_floating_point() and not torch.equal(v, b['state_dict'][k])]
    assert len(moved) > 100  # training went on from the pruned weights
    assert sorted(tuple(s['momentum_buffer'].shape) for s in b['optimizer']['state'].values()) \
        == sorted(tuple(s['momentum_buffer'].shape) for s in a['optimizer']['state'].values())


# --------------------------------------------- float16-style loss scaling (GradScaler)
@pytest.fixture
def cpu_grad_scaler(monkeypatch):
    """Let mmengine's own AmpOptimWrapper run on the CPU: a CPU GradScaler, bfloat16 autocast.

    Its code (scaled backward, ``GradScaler.step``/``update``, state_dict with
    ``loss_scaler``, load) runs unchanged; only the CUDA assertion and the
    CUDA scaler class are replaced.
    """
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    monkeypatch.setattr(amp, 'GradScaler', lambda **kw: torch.amp.GradScaler('cpu', **kw))
    return amp.AmpOptimWrapper


@HOOKS.register_module(force=True)
class ScalerRecorderHook(Hook):
    """Records the optimizer wrapper's loss scaler and its scale after every iteration."""
    priority = 'LOWEST'

    def __init__(self):
        self.seen = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        scaler = runner.optim_wrapper.loss_scaler
        self.seen.append((scaler, scaler.get_scale()))


class _Runner:
    def __init__(self, model, wrapper):
        self.model, self.iter, self.hooks, self.optim_wrapper = model, 0, [], wrapper


def _sparse_steps(mode, wrapper_cls=OptimWrapper, s=2 ** -4, steps=6, skip=(), **wrapper_kw):
    """SGD steps with the sparsity hook; iterations in ``skip`` get an inf loss."""
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():
        net.bn.weight.copy_(torch.tensor([0.3, -0.2, 0.5, 1.0]))
    optimizer = torch.optim.SGD(net.parameters(), lr=2 ** -4, momentum=0.9)
    runner = _Runner(net, wrapper_cls(optimizer=optimizer, **wrapper_kw))
    hook = SensitivitySparsityHook(s=s, mode=mode)
    x = torch.randn(2, 3, 5, 5)
    for it in range(steps):
        runner.iter = it
        hook.before_train_iter(runner, it)
        loss = (net(x) - 0.5).square().mean()
        if it in skip:
            loss = loss * float('inf')
        runner.optim_wrapper.update_params(loss)
        hook.after_train_iter(runner, it)
    hook.after_run(runner)
    return net.bn.weight.detach().clone(), runner.optim_wrapper


def test_subgradient_under_grad_scaler_equals_the_unscaled_update(cpu_grad_scaler):
    plain, _ = _sparse_steps('subgradient')
    scaled, wrapper = _sparse_steps('subgradient', cpu_grad_scaler, dtype='bfloat16',
                                    loss_scale=dict(init_scale=2. ** 8, growth_interval=2))
    assert wrapper.loss_scaler.get_scale() == 2. ** 11  # the scale changed during the run
    torch.testing.assert_close(scaled, plain, rtol=1e-6, atol=1e-7)
    without, _ = _sparse_steps('subgradient', s=0.0)
    assert (plain - without).abs().min() > 1e-2  # the term itself is far above tolerance


def test_proximal_shrink_skips_the_step_the_scaler_skipped(cpu_grad_scaler):
    scaled, wrapper = _sparse_steps('proximal', cpu_grad_scaler, steps=6, skip=(2,),
                                    dtype='bfloat16', loss_scale=dict(init_scale=2. ** 8))
    assert wrapper.loss_scaler.get_scale() == 2. ** 7  # iteration 2 overflowed: step skipped
    # the same run without iteration 2 at all (no step, no shrink)
    torch.manual_seed(0)
    reference, _ = _sparse_steps('proximal', steps=5)
    torch.testing.assert_close(scaled, reference, rtol=1e-6, atol=1e-7)


def test_grad_scaler_state_survives_the_prune_and_the_resume(tmp_path, cpu_grad_scaler):
    """mmengine's AmpOptimWrapper (GradScaler) with every npdg hook: prune at 3, resume."""
    hooks = [
        dict(type='StylePerturbationHook', perturbation=dict(type='AdvStyle'),
             stylized_ratio=0.5),
        dict(type='SensitivityStatisticsHook', interval=2, num_images=2, num_styles=3,
             num_positions=32),
        dict(type='SensitivitySparsityHook', s=1e-2),
        dict(type='UnitPruningHook', prune_iters=[3], ratio=0.3, threshold=None,
             trace_shape=(3, 64, 64), flops_shape=(3, 64, 64)),
        dict(type='PrunedCheckpointHook'), dict(type='RNGStateHook'),
        dict(type='ScalerRecorderHook')]

    def cfg(work, max_iters=6):
        c = runner_cfg(work, deeplab_r18_cfg(), max_iters=max_iters, custom_hooks=hooks,
                       checkpoint_interval=3)
        c.optim_wrapper.update(type='AmpOptimWrapper', dtype='bfloat16',
                               loss_scale=dict(init_scale=2. ** 10, growth_interval=1))
        return c

    runner = NpdgRunner.from_cfg(cfg(tmp_path / 'run'))
    params_before = sum(p.numel() for p in runner.model.parameters())
    runner.train()
    assert sum(p.numel() for p in runner.model.parameters()) < params_before
    # one scaler object throughout (the prune at 3 kept the wrapper); growth_interval=1:
    # the scale doubles at every step (none skipped)
    seen = next(h for h in runner.hooks if type(h).__name__ == 'ScalerRecorderHook').seen
    assert len({id(scaler) for scaler, _ in seen}) == 1
    assert [scale for _, scale in seen] == [2. ** k for k in range(11, 17)]
    ckpt3 = load_from_local(str(tmp_path / 'run' / 'iter_3.pth'))
    assert ckpt3['optimizer']['loss_scaler']['scale'] == 2. ** 13
    assert load_from_local(str(tmp_path / 'run' / 'iter_6.pth'))[
        'optimizer']['loss_scaler']['scale'] == 2. ** 16
    stats = next(h for h in runner.hooks if type(h).__name__ == 'SensitivityStatisticsHook')
    assert torch.bfloat16 in stats.observed_dtypes
    style = next(h for h in runner.hooks if type(h).__name__ == 'StylePerturbationHook')
    assert style.autocast_dtype == torch.bfloat16
    # resuming the pruned checkpoint restores the scaler (fresh: 2^10 -> 2^13 at iter 6)
    resumed = cfg(tmp_path / 'run')
    resumed.resume, resumed.load_from = True, str(tmp_path / 'run' / 'iter_3.pth')
    again = NpdgRunner.from_cfg(resumed)
    again.train()
    assert again.optim_wrapper.loss_scaler.get_scale() == 2. ** 16
    assert sum(p.numel() for p in again.model.parameters()) == \
        sum(p.numel() for p in runner.model.parameters())


def test_training_autocast_is_a_no_op_without_amp():
    net = nn.Linear(3, 2)
    runner = _Runner(net, OptimWrapper(torch.optim.SGD(net.parameters(), lr=0.1)))
    with training_autocast(runner, net):
        assert net(torch.randn(1, 3)).dtype == torch.float32
    runner.optim_wrapper = CPUAmpOptimWrapper(optimizer=runner.optim_wrapper.optimizer)
    with training_autocast(runner, net):
        assert net(torch.randn(1, 3)).dtype == torch.bfloat16
