"""End to end through the tools: generate, convert, train, test, resume."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch

import npdg  # noqa: F401
from npdg.engine.runner import NpdgRunner
from npdg.utils.checkpoint_io import load_from_local

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CFG = osp.join(ROOT, 'configs', 'demo', 'deeplab_r18_synthetic.py')
FAST = ['train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0', 'default_hooks.logger.interval=1',
        'custom_hooks.0.input_shape=[3,64,128]']


def run_tool(args, cwd):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:])
    return proc.stdout + proc.stderr


def test_train_then_test_reports_targets_and_flops(workspace):
    work = workspace / 'work_cli'
    log = run_tool([osp.join(ROOT, 'tools', 'train.py'), DEMO_CFG, '--work-dir', str(work),
                    '--cfg-options', 'train_cfg.max_iters=4',
                    'default_hooks.checkpoint.interval=2', *FAST], cwd=workspace)
    assert 'Iter(train) [4/4]' in log
    ckpt = work / 'iter_4.pth'
    assert ckpt.is_file()
    out = run_tool([osp.join(ROOT, 'tools', 'test.py'), DEMO_CFG, str(ckpt),
                    '--work-dir', str(workspace / 'work_test'), '--cfg-options', *FAST[3:]],
                   cwd=workspace)
    for target in ('cityscapes', 'bdd100k', 'mapillary'):
        assert f'{target}/mIoU' in out
    jsons = glob.glob(str(workspace / 'work_test' / '*' / '*.json'))
    assert len(jsons) == 1
    metrics = json.load(open(jsons[0]))
    for key in ('cityscapes/mIoU', 'bdd100k/mIoU', 'mapillary/mIoU', 'mIoU', 'gflops',
                'params_m'):
        assert key in metrics, key
    mean = sum(metrics[f'{t}/mIoU'] for t in ('cityscapes', 'bdd100k', 'mapillary')) / 3
    assert abs(metrics['mIoU'] - mean) < 0.011
    assert metrics['gflops'] > 0 and metrics['flops_input'] == '3x64x128'

    # --resume continues from the latest checkpoint in the work dir
    log = run_tool([osp.join(ROOT, 'tools', 'train.py'), DEMO_CFG, '--work-dir', str(work),
                    '--resume', '--cfg-options', 'train_cfg.max_iters=6',
                    'default_hooks.checkpoint.interval=2', *FAST], cwd=workspace)
    assert 'resumed' in log.lower() and 'Iter(train) [6/6]' in log
    assert 'Iter(train) [1/6]' not in log


def test_get_flops_and_benchmark_tools(workspace):
    out = run_tool([osp.join(ROOT, 'tools', 'get_flops.py'), DEMO_CFG, '--shape', '64', '128'],
                   cwd=workspace)
    assert 'GFLOPs' in out and '3x64x128' in out and 'skips' in out
    out = run_tool([osp.join(ROOT, 'tools', 'benchmark.py'), DEMO_CFG, '--shape', '64',
                    '--warmup', '1', '--repeats', '3'], cwd=workspace)
    assert 'median' in out and '1x3x64x64' in out


class _Crash(RuntimeError):
    pass


def _runner_cfg(work_dir, max_iters, crash_at=None):
    from mmengine.config import Config
    cfg = Config.fromfile(DEMO_CFG)
    cfg.merge_from_dict(dict(
        work_dir=str(work_dir), train_dataloader=dict(batch_size=2, num_workers=0,
                                                      persistent_workers=False),
        train_cfg=dict(max_iters=max_iters),
        param_scheduler=[dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=6,
                              by_epoch=False)],
        default_hooks=dict(checkpoint=dict(interval=3), logger=dict(interval=1))))
    cfg.custom_hooks = [dict(type='RNGStateHook')]
    if crash_at is not None:
        cfg.custom_hooks.append(dict(type='CrashAtIterHook', at=crash_at))
    return cfg


def test_killed_run_resumes_to_the_same_weights(workspace, monkeypatch):
    """Uninterrupted 6 iterations == crash after 3 + resume (bit-exact)."""
    from mmengine.hooks import Hook
    from mmseg.registry import HOOKS

    @HOOKS.register_module(force=True)
    class CrashAtIterHook(Hook):
        priority = 'LOWEST'  # after the checkpoint hook

        def __init__(self, at):
            self.at = at

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == self.at:
                raise _Crash(f'simulated crash after iteration {self.at}')

    monkeypatch.chdir(workspace)
    NpdgRunner.from_cfg(_runner_cfg(workspace / 'full', 6)).train()
    with pytest.raises(_Crash):
        NpdgRunner.from_cfg(_runner_cfg(workspace / 'crash', 6, crash_at=4)).train()
    assert osp.isfile(workspace / 'crash' / 'iter_3.pth')
    assert not osp.isfile(workspace / 'crash' / 'iter_6.pth')
    cfg = _runner_cfg(workspace / 'crash', 6)
    cfg.resume = True
    NpdgRunner.from_cfg(cfg).train()
    full = load_from_local(str(workspace / 'full' / 'iter_6.pth'))['state_dict']
    resumed = load_from_local(str(workspace / 'crash' / 'iter_6.pth'))['state_dict']
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


def _hold_lock(work, tmp_path):
    """A live process that holds ``work``'s lock, as a running training would."""
    ready = tmp_path / 'ready'
    code = ('import sys, time, pathlib; from npdg.utils.workdir_lock import WorkDirLock; '
            f'lock = WorkDirLock({str(work)!r}).acquire(); '
            f'pathlib.Path({str(ready)!r}).write_text("1"); time.sleep(120)')
    proc = subprocess.Popen([sys.executable, '-c', code])
    for _ in range(300):
        if ready.exists():
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError('lock holder did not start')


def test_second_run_into_a_busy_work_dir_refuses(workspace, tmp_path):
    work = workspace / 'busy'
    holder = _hold_lock(work, tmp_path)
    try:
        proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), DEMO_CFG,
                               '--work-dir', str(work), '--cfg-options', 'max_iters=2', *FAST],
                              cwd=workspace, capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode != 0
    assert f'PID {holder.pid}' in proc.stderr and 'in use by another run' in proc.stderr
    assert not glob.glob(str(work / '*' / '*.log'))  # it wrote nothing there


def test_lock_of_a_killed_run_is_taken_over(workspace, tmp_path):
    """kill -9 leaves the lock file; its dead PID is detected and the run starts."""
    from npdg.utils.workdir_lock import LOCK_NAME, WorkDirLock
    work = workspace / 'stale'
    holder = _hold_lock(work, tmp_path)
    holder.kill()  # SIGKILL: no clean-up
    holder.wait()
    assert (work / LOCK_NAME).is_file()
    with WorkDirLock(str(work)) as lock:
        owner = json.load(open(work / LOCK_NAME))
        assert lock.held and owner['pid'] == os.getpid()
    assert not (work / LOCK_NAME).exists()  # released at the end


def test_lock_is_released_so_resume_works(workspace):
    from npdg.utils.workdir_lock import LOCK_NAME, WorkDirLock
    work = workspace / 'reuse'
    with WorkDirLock(str(work)):
        with pytest.raises(RuntimeError, match='in use by another run'):
            # the same process taking it twice through another object is refused too
            WorkDirLock(str(work)).acquire()
    assert not (work / LOCK_NAME).exists()
    WorkDirLock(str(work)).acquire().release()


def _stock_mmseg_tool(name):
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', name)


def test_stock_test_tool_rebuilds_a_pruned_checkpoint_under_a_plain_config(npdg_demo_run,
                                                                           workspace):
    """mmseg's own tools/test.py + the *baseline* config (imports npdg, no
    PrunedCheckpointHook) + an NPDG checkpoint: rebuilt and loaded strictly,
    pruned FLOPs reported; never 'size mismatch'."""
    ckpt = npdg_demo_run / 'iter_3.pth'
    proc = subprocess.run(
        [sys.executable, _stock_mmseg_tool('test.py'), DEMO_CFG, str(ckpt),
         '--work-dir', str(workspace / 'stock_test'), '--cfg-options', *FAST[3:]],
        cwd=workspace, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'size mismatch' not in log and 'missing keys' not in log
    assert "applied the checkpoint's pruned structure" in log
    metrics = json.load(open(glob.glob(str(workspace / 'stock_test' / '*' / '*.json'))[0]))
    report = json.load(open(npdg_demo_run / 'pruning' / 'pruning_report.json'))
    unpruned = report['steps'][0]['gflops_before'] * (128 * 256) / (64 * 64)
    assert metrics['gflops'] < 0.8 * unpruned  # the pruned model was evaluated


def test_init_model_api_rebuilds_a_pruned_checkpoint(npdg_demo_run):
    """mmseg.apis.init_model with a config importing npdg: the pruned weights, exactly."""
    from mmseg.apis import init_model
    ckpt = npdg_demo_run / 'iter_3.pth'
    model = init_model(DEMO_CFG, str(ckpt), device='cpu')
    saved = load_from_local(str(ckpt))['state_dict']
    state = model.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(state[k], v) for k, v in saved.items())


@pytest.mark.parametrize('weights_only', [True, False])
def test_pruned_checkpoint_fails_loudly_without_npdg(npdg_demo_run, weights_only):
    """A process that never imported npdg cannot half-load an npdg pruned checkpoint."""
    code = ('import sys, torch; '
            f'torch.load({str(npdg_demo_run / "iter_3.pth")!r}, weights_only={weights_only}); '
            'print("LOADED")')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, cwd='/')
    assert proc.returncode != 0 and 'LOADED' not in proc.stdout
    assert 'npdg' in proc.stderr
    if not weights_only:
        assert 'structurally pruned npdg model' in proc.stderr


def test_test_tool_out_and_tta(npdg_demo_run, workspace):
    """--out saves every target's predictions; --tta runs on the project configs."""
    out = workspace / 'preds'
    log = run_tool([osp.join(ROOT, 'tools', 'test.py'), DEMO_CFG,
                    str(npdg_demo_run / 'iter_3.pth'), '--work-dir', str(workspace / 'w_out'),
                    '--out', str(out), '--tta', '--cfg-options', *FAST[3:]], cwd=workspace)
    assert 'mIoU' in log
    for target in ('cityscapes', 'bdd100k', 'mapillary'):
        files = sorted((out / target).glob('*.png'))
        assert files, target
        import numpy as np
        from PIL import Image
        pred = np.asarray(Image.open(files[0]))
        assert pred.ndim == 2 and pred.max() < 19
    assert "type='SegTTAModel'" in log and "type='TestTimeAug'" in log


def test_one_unit_total_in_the_log(npdg_demo_run):
    """The log counts units one way: removed R of U, U - R remain; other counts are named."""
    import re
    log = open(glob.glob(str(npdg_demo_run / '*' / '*.log'))[0]).read()
    steps = re.findall(r'removed (\d+) of (\d+) units .*?, (\d+) remain', log)
    assert len(steps) == 1
    removed, total, remain = map(int, steps[0])
    report = json.load(open(npdg_demo_run / 'pruning' / 'pruning_report.json'))
    assert (removed, total) == (report['steps'][0]['removed'], report['steps'][0]['total'])
    assert total - removed == remain
    # every other count in the log names what it counts
    others = [m for m in re.findall(r'(\d+) units', log) if int(m) not in (total, )]
    assert not others, others
