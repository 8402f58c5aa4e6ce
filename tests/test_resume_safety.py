"""Resumes that run what they record (issue 17, sections 1-3).

1. A changed setting whose effect the checkpoint already fixed (a prune that
   is done, a sparse phase that is over) is an error by default, or a loud
   warning with ``resume_settings='warn'``; the work dir records what ran.
2. A copied or moved work dir resumes from its own checkpoints
   (``last_checkpoint`` holds a relative name; an absolute one pointing
   elsewhere is not followed).
3. Checkpoints are written atomically (a kill mid-save leaves the previous
   one intact and no partial file); a damaged latest checkpoint falls back to
   the newest intact one, or stops naming it, as ``resume_damaged`` says.
"""
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import npdg  # noqa: F401
from npdg.engine.runner import NpdgRunner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
NPDG_CFG = osp.join(ROOT, 'configs', 'demo', 'npdg_deeplab_r18_synthetic.py')
# The options, at a small input size (one statistics batch per refresh).
Q = ['stats_interval=2', 'stats_batches=1', 'train_cfg.val_interval=100',
     'default_hooks.checkpoint.interval=2',
     'batch_size=2', 'train_dataloader.num_workers=0',
     'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
     'test_dataloader.num_workers=0', 'complexity_hook.input_shape=[3,64,64]',
     'pruning_hook.flops_shape=[3,64,64]', 'default_hooks.logger.interval=1']


def train(work, *options, resume=None, cwd, check=True):
    """tools/train.py on the NPDG demo config; returns (returncode, output)."""
    args = [sys.executable, TRAIN, NPDG_CFG, '--work-dir', str(work)]
    if resume is not None:
        args += ['--resume'] if resume is True else ['--resume', str(resume)]
    proc = subprocess.run(args + ['--cfg-options', *Q, *options], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, out[-5000:]
    return proc.returncode, out


@pytest.fixture(scope='module')
def pruned_run(workspace):
    """The issue's first run: 6 iterations, pruned (ratio 0.3) after 4, saved at 4 and 6."""
    work = workspace / 'resume_safety_W'
    train(work, 'train_cfg.max_iters=6', 'prune_iters=[4]', cwd=workspace)
    assert (work / 'iter_4.pth').is_file() and (work / 'iter_6.pth').is_file()
    return work


def copy_run(pruned_run, name):
    dest = pruned_run.parent / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(pruned_run, dest)
    return dest


def dumped_config(work):
    return (work / 'npdg_deeplab_r18_synthetic.py').read_text()


# ------------------------------------------------------------------ 1. settings
def test_changed_prune_ratio_after_the_prune_is_an_error(pruned_run, workspace):
    """The issue's second command: prune_ratio=0.5 after the 0.3 prune at 4."""
    work = copy_run(pruned_run, 'rs_ratio_error')
    before = dumped_config(work)
    rc, out = train(work, 'train_cfg.max_iters=10', 'prune_iters=[4]', 'prune_ratio=0.5',
                    resume=True, cwd=workspace, check=False)
    assert rc != 0, out[-3000:]
    assert 'ResumeSettingsError' in out
    assert 'prune_ratio (UnitPruningHook.ratio): the checkpoint ran 0.3, this run sets 0.5' in out
    assert 'prune step at iteration 4' in out and "resume_settings='warn'" in out
    # nothing ran, so the work dir still records the run that did
    assert dumped_config(work) == before
    assert not (work / 'iter_8.pth').exists()


def test_resume_settings_warn_continues_and_records_what_ran(pruned_run, workspace):
    work = copy_run(pruned_run, 'rs_ratio_warn')
    _, out = train(work, 'train_cfg.max_iters=8', 'prune_iters=[4]', 'prune_ratio=0.5',
                   'resume_settings=warn', resume=True, cwd=workspace)
    assert 'Iter(train) [8/8]' in out
    assert 'WARNING' in out and 'the checkpoint ran 0.3, this run sets 0.5' in out
    ran = json.load(open(work / 'settings_ran.json'))
    first, second = ran['segments']
    assert (first['from_iter'], first['to_iter']) == (0, 6)
    assert (second['from_iter'], second['to_iter']) == (6, 8)
    change = second['changed']['prune_ratio (UnitPruningHook.ratio)']
    assert change['checkpoint'] == 0.3 and change['this_run'] == 0.5 and change['fixed']
    assert 'prune step at iteration 4' in change['effect']
    # the work dir's config says so too
    assert 'did NOT take effect' in dumped_config(work)
    assert 'prune_ratio' in dumped_config(work).split('did NOT take effect')[1]


def _resolved(*options):
    """The demo config with the issue's options and ``options``, resolved (no run)."""
    import argparse

    from npdg.utils.config import add_common_args, load_config
    args = add_common_args(argparse.ArgumentParser()).parse_args(
        ['--cfg-options', *Q, *options])
    return load_config(NPDG_CFG, args.cfg_options, work_dir='unused')


@pytest.mark.parametrize('at, options, conflicts', [
    # after the prune at 4 (checkpoint at 6)
    (6, ['prune_iters=[4]', 'prune_ratio=0.5'], ['prune_ratio (UnitPruningHook.ratio)']),
    (6, ['prune_iters=[4]', 'lam=1.0'], ['lam (SensitivityStatisticsHook.lam)']),
    (6, ['prune_iters=[4]', 'sparsity=0.05'], ['sparsity (SensitivitySparsityHook.s)']),
    (6, ['prune_iters=[4]', 'pruning_hook.unit_types=[channel]'],
     ['UnitPruningHook.unit_types']),
    (6, ['prune_iters=[4,8]'], ['prune_iters (UnitPruningHook.prune_iters)']),  # 1 -> 2 steps
    (6, ['prune_iters=[5]'], ['prune_iters (UnitPruningHook.prune_iters)']),
    (6, ['prune_iters=[4]', 'train_cfg.max_iters=20', 'stylized_ratio=0.25'], []),
    # before the prune (checkpoint at 2): everything can still take effect
    (2, ['prune_iters=[6]', 'prune_ratio=0.5', 'lam=1.0', 'sparsity=0.05'], []),
    (2, ['prune_iters=[1]'], ['prune_iters (UnitPruningHook.prune_iters)']),  # would never run
])
def test_only_settings_the_checkpoint_fixed_conflict(at, options, conflicts):
    from npdg.utils.resume import resume_changes, settings_record
    ran = settings_record(_resolved('prune_iters=[4]'))
    changes = resume_changes(ran, at, _resolved(*options))
    assert sorted(c['label'] for c in changes if c['fixed']) == sorted(conflicts)


def test_an_argument_one_npdg_version_lacks_is_not_a_conflict():
    from npdg.utils.resume import resume_changes, settings_record
    ran = settings_record(_resolved('prune_iters=[4]'))
    del ran['hooks']['SensitivityStatisticsHook']['lam']  # as if the hook had no such argument
    changes = resume_changes(ran, 6, _resolved('prune_iters=[4]'))
    assert [c['fixed'] for c in changes if c['label'].endswith('.lam)')] == [False]


def test_checkpoints_without_a_settings_record_are_compared_through_their_config(pruned_run):
    """Checkpoints written before the record existed still carry mmengine's config."""
    from npdg.engine import ckpt_state
    from npdg.utils.checkpoint_io import load_from_local
    from npdg.utils.resume import checkpoint_record, resume_changes
    ckpt = load_from_local(str(pruned_run / 'iter_6.pth'))
    assert ckpt_state.pop(ckpt, 'settings') is not None
    changes = resume_changes(checkpoint_record(ckpt), 6,
                             _resolved('prune_iters=[4]', 'prune_ratio=0.5'))
    assert [c['label'] for c in changes if c['fixed']] == ['prune_ratio (UnitPruningHook.ratio)']


# ------------------------------------------------------------------ 2. copied work dir
def test_last_checkpoint_is_relative_and_mmengine_still_finds_it(pruned_run, tmp_path,
                                                                  monkeypatch):
    from mmengine.runner import runner as runner_module
    assert (pruned_run / 'last_checkpoint').read_text().strip() == 'iter_6.pth'
    monkeypatch.chdir(tmp_path)  # not the work dir
    assert runner_module.find_latest_checkpoint(str(pruned_run)) == \
        str(pruned_run / 'iter_6.pth')


def test_copied_work_dir_resumes_from_its_own_checkpoint(pruned_run, workspace):
    """cp -r W W2; --resume in W2 (last_checkpoint still absolute, as older npdg wrote it)."""
    work = copy_run(pruned_run, 'rs_copy')
    (work / 'last_checkpoint').write_text(str(pruned_run / 'iter_6.pth'))
    original = sorted(os.listdir(pruned_run))
    stamp = (pruned_run / 'iter_6.pth').stat().st_mtime_ns
    # more iterations and another val interval: both still take effect
    _, out = train(work, 'train_cfg.max_iters=8', 'prune_iters=[4]',
                   'train_cfg.val_interval=4', resume=True, cwd=workspace)
    assert f'Load checkpoint from {work / "iter_6.pth"}' in out
    assert f'Load checkpoint from {pruned_run / "iter_6.pth"}' not in out
    assert 'outside this work dir' in out and str(pruned_run / 'iter_6.pth') in out
    # the message hub's paths follow (CheckpointHook deletes old best/kept files by them)
    assert f'last_ckpt re-pointed into {work}' in out
    assert 'Iter(train) [8/8]' in out and (work / 'iter_8.pth').is_file()
    assert sorted(os.listdir(pruned_run)) == original
    assert (pruned_run / 'iter_6.pth').stat().st_mtime_ns == stamp
    assert (work / 'last_checkpoint').read_text().strip() == 'iter_8.pth'


def test_last_checkpoint_outside_without_an_own_copy_is_refused(tmp_path):
    from npdg.utils.resume import find_resume_checkpoint
    elsewhere = tmp_path / 'W'
    elsewhere.mkdir()
    (elsewhere / 'iter_6.pth').write_bytes(b'x')
    work = tmp_path / 'W2'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(elsewhere / 'iter_6.pth'))
    with pytest.raises(FileNotFoundError, match='--resume ' + str(elsewhere / 'iter_6.pth')):
        find_resume_checkpoint(str(work))


# ------------------------------------------------------------------ 3. atomic saves
CHILD = textwrap.dedent('''
    import os, sys, time
    import torch
    import npdg
    from mmengine.fileio.backends import local_backend
    from mmengine.runner.checkpoint import save_checkpoint
    work, ready = sys.argv[1], sys.argv[2]
    ckpt = dict(meta=dict(iter=2), state_dict=dict(w=torch.arange(50000.)))
    save_checkpoint(ckpt, os.path.join(work, 'iter_2.pth'))
    with open(os.path.join(work, 'last_checkpoint'), 'w') as f:
        f.write('iter_2.pth')
    real_put = local_backend.LocalBackend.put

    def blocking_put(self, obj, filepath):
        # the write of the file itself: half of it, then hang (a kill comes)
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
        open(ready, 'w').write(str(filepath))
        time.sleep(120)

    local_backend.LocalBackend.put = blocking_put
    ckpt['meta']['iter'] = 4
    save_checkpoint(ckpt, os.path.join(work, 'iter_4.pth'))
''')


def test_kill_during_a_save_leaves_the_previous_checkpoint_and_no_partial_file(tmp_path):
    from npdg.utils.checkpoint_io import MANIFEST, load_from_local
    work, ready = tmp_path / 'W', tmp_path / 'ready'
    work.mkdir()
    child = subprocess.Popen([sys.executable, '-c', CHILD, str(work), str(ready)],
                             env=dict(os.environ, OMP_NUM_THREADS='1'))
    try:
        for _ in range(1200):
            if ready.exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), 'the child did not reach the write'
        time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not (work / 'iter_4.pth').exists()  # never a half-written checkpoint
    assert ready.read_text() != str(work / 'iter_4.pth')  # it wrote a temp file instead
    manifest = json.load(open(work / MANIFEST))
    assert set(manifest) == {'iter_2.pth'}
    assert load_from_local(str(work / 'iter_2.pth'))['meta']['iter'] == 2
    from npdg.utils.resume import resolve_resume
    path, ckpt, notes = resolve_resume(str(work))
    assert path == str(work / 'iter_2.pth') and ckpt['meta']['iter'] == 2
    assert sorted(os.listdir(work)) == sorted([MANIFEST, 'iter_2.pth', 'last_checkpoint'])
    assert any('temporary' in note for note in notes)  # the stale temp file was removed


def test_damaged_checkpoint_error_names_the_file(tmp_path):
    from npdg.utils.checkpoint_io import DamagedCheckpointError, load_from_local, save_trusted
    path = str(tmp_path / 'iter_2.pth')
    save_trusted(dict(meta=dict(iter=2), state_dict=dict(w=torch.arange(50000.))), path)
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(DamagedCheckpointError, match=f"'{path}' is damaged or incomplete"):
        load_from_local(path)


def _truncate(path):
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def test_resume_falls_back_from_a_truncated_latest_checkpoint(pruned_run, workspace):
    work = copy_run(pruned_run, 'rs_truncated')
    _truncate(work / 'iter_6.pth')
    _, out = train(work, 'train_cfg.max_iters=8', 'prune_iters=[4]', resume=True, cwd=workspace)
    assert f"'{work / 'iter_6.pth'}' is damaged or incomplete" in out
    assert f'resuming from {work / "iter_4.pth"}, the newest intact checkpoint' in out
    assert f'Load checkpoint from {work / "iter_4.pth"}' in out
    assert 'resumed epoch: 0, iter: 4' in out and 'Iter(train) [8/8]' in out


def test_truncated_latest_checkpoint_with_resume_damaged_error(pruned_run, workspace):
    work = copy_run(pruned_run, 'rs_truncated_error')
    _truncate(work / 'iter_6.pth')
    rc, out = train(work, 'train_cfg.max_iters=8', 'prune_iters=[4]', 'resume_damaged=error',
                    resume=True, cwd=workspace, check=False)
    assert rc != 0
    assert f"'{work / 'iter_6.pth'}' is damaged or incomplete" in out
    assert f'--resume {work / "iter_4.pth"}' in out
    assert 'PytorchStreamReader' in out  # torch's own words are kept, after npdg's


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from npdg.utils.checkpoint_io import atomic_write
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError, match='disk full'):
        with atomic_write(str(path)) as f:
            f.write(b'new, half')
            raise RuntimeError('disk full')
    assert path.read_bytes() == b'old' and os.listdir(tmp_path) == ['model.onnx']
    with atomic_write(str(path)) as f:
        f.write(b'new')
    assert path.read_bytes() == b'new' and os.listdir(tmp_path) == ['model.onnx']


def test_save_trusted_records_only_after_the_file_is_complete(tmp_path, monkeypatch):
    from npdg.utils import checkpoint_io
    path = str(tmp_path / 'slim.pth')
    checkpoint_io.save_trusted(dict(state_dict=dict(w=torch.ones(3))), path)
    old = open(path, 'rb').read()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b'partial')
        raise OSError('killed')

    monkeypatch.setattr(torch, 'save', failing_save)
    with pytest.raises(OSError, match='killed'):
        checkpoint_io.save_trusted(dict(state_dict=dict(w=torch.zeros(3))), path)
    assert open(path, 'rb').read() == old and checkpoint_io.is_trusted(path)
    assert sorted(os.listdir(tmp_path)) == [checkpoint_io.MANIFEST, 'slim.pth']


def test_a_runner_resume_outside_the_train_tool_is_checked_too(tmp_path):
    """mmengine's Runner (mmseg's own tools): PrunedCheckpointHook compares the settings."""
    from conftest import deeplab_r18_cfg, runner_cfg

    from npdg.utils.resume import ResumeSettingsError
    hook = dict(type='UnitPruningHook', prune_iters=[2], ratio=0.2, threshold=None,
                trace_shape=(3, 64, 64), flops_shape=(3, 64, 64))
    NpdgRunner.from_cfg(runner_cfg(tmp_path, deeplab_r18_cfg(), max_iters=3, custom_hooks=[hook],
                               checkpoint_interval=3)).train()
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_3.pth'
    cfg = runner_cfg(tmp_path, deeplab_r18_cfg(), max_iters=4,
                     custom_hooks=[dict(hook, ratio=0.4)])
    cfg.resume = True
    with pytest.raises(ResumeSettingsError,
                       match=r'UnitPruningHook\.ratio: the checkpoint ran 0\.2, this run sets 0\.4'):
        NpdgRunner.from_cfg(cfg).train()


def _wait_then_kill(child, ready):
    """Wait until the child blocks inside its write (``ready`` appears), then kill -9 it."""
    try:
        for _ in range(2400):
            if ready.exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), 'the child did not reach the write'
        time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


# A torch.save that writes half of the file, says where, then hangs (a kill comes).
BLOCKING_SAVE = '''
import io, os, time
import torch
real_save = torch.save

def block_in_torch_save(ready):
    def blocking_save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        named = isinstance(f, (str, os.PathLike))
        out = open(f, 'wb') if named else f
        out.write(data[:len(data) // 2])
        out.flush()
        open(ready, 'w').write(str(f if named else out.name))
        time.sleep(120)
    torch.save = blocking_save
'''

DSP_CHILD = BLOCKING_SAVE + textwrap.dedent('''
    import shutil, sys
    import npdg
    from npdg.perturbation.vgg import VGGEncoder, save_vgg_encoder
    from npdg.perturbation.dsp_training import train_dsp
    what, out, ready = sys.argv[1], sys.argv[2], sys.argv[3]
    if what == 'vgg':
        path = os.path.join(out, 'vgg.pth')
        encoder = VGGEncoder()
        encoder.init_random(0)
        save_vgg_encoder(encoder, path)
        shutil.copy(path, os.path.join(out, 'expected'))
        encoder.init_random(1)
        block_in_torch_save(ready)
        save_vgg_encoder(encoder, path)
    else:
        kw = dict(random_vgg=True, size=16, batch=1, latent_dim=8, hidden_dim=16,
                  device='cpu', save_interval=1)
        train_dsp(sys.argv[4], sys.argv[5], out, iters=1, **kw)
        shutil.copy(os.path.join(out, 'decoder.pth'), os.path.join(out, 'expected'))
        block_in_torch_save(ready)
        train_dsp(sys.argv[4], sys.argv[5], out, iters=2, **kw)
''')


def _image_folder(folder):
    import cv2
    import numpy as np
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / '0.png'), rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    return str(folder)


@pytest.mark.parametrize('what, name', [('vgg', 'vgg.pth'), ('dsp', 'decoder.pth')])
def test_kill_during_a_dsp_save_leaves_the_previous_file(tmp_path, what, name):
    """save_vgg_encoder / train_dsp's decoder.pth: kill -9 in the middle of the write."""
    out, ready = tmp_path / 'out', tmp_path / 'ready'
    out.mkdir()
    images = [_image_folder(tmp_path / 'content'), _image_folder(tmp_path / 'style')]
    child = subprocess.Popen([sys.executable, '-c', DSP_CHILD, what, str(out), str(ready),
                              *images], cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'))
    _wait_then_kill(child, ready)
    target = out / name
    assert ready.read_text() != str(target)  # it wrote a temporary file beside it instead
    assert target.read_bytes() == (out / 'expected').read_bytes()  # byte-identical
    temp = f'{name}.tmp-{child.pid}'
    assert ready.read_text() == str(out / temp)
    assert sorted(n for n in os.listdir(out) if n.startswith(name)) == sorted([name, temp])
    loaded = torch.load(str(target), map_location='cpu', weights_only=True)
    if what == 'vgg':
        from npdg.perturbation.vgg import load_vgg_encoder
        assert torch.equal(load_vgg_encoder(str(target)).features[0].weight,
                           loaded['features.0.weight'])
    else:
        assert loaded['iteration'] == 1
        # the rerun resumes from it and removes the dead run's temporary file
        from npdg.perturbation.dsp_training import train_dsp
        with pytest.warns(UserWarning, match='RANDOM'):
            train_dsp(*images, str(out), iters=1, random_vgg=True, size=16, batch=1,
                      latent_dim=8, hidden_dim=16, device='cpu')
        log = (out / 'train_dsp.log').read_text()
        assert f'removed 1 temporary file(s) of an interrupted save: {temp}' in log
        assert 'resumed from' in log and 'nothing to do' in log
        assert not (out / temp).exists()


@pytest.mark.parametrize('what', ['vgg', 'dsp'])
def test_a_failing_dsp_save_keeps_the_old_file_and_leaves_no_partial_one(tmp_path,
                                                                         monkeypatch, what):
    from npdg.perturbation import dsp_training
    from npdg.perturbation.dsp import build_dsp_networks
    from npdg.perturbation.vgg import VGGEncoder, save_vgg_encoder
    encoder = VGGEncoder()
    decoder, vae = build_dsp_networks(dict(dsp_training.DEFAULT_CONFIG, latent_dim=8,
                                           hidden_dim=16))
    optimizer = torch.optim.Adam(list(decoder.parameters()) + list(vae.parameters()))
    path = str(tmp_path / ('vgg.pth' if what == 'vgg' else 'decoder.pth'))

    def save(iteration):
        if what == 'vgg':
            save_vgg_encoder(encoder, path)
        else:
            dsp_training.save_checkpoint(path, decoder, vae, optimizer, iteration, {},
                                         dict(noise=torch.Generator()))

    save(1)
    old = open(path, 'rb').read()

    def failing_save(obj, f, *args, **kwargs):
        out = open(f, 'wb') if isinstance(f, (str, os.PathLike)) else f
        out.write(b'partial')
        out.flush()
        raise OSError('killed')

    monkeypatch.setattr(torch, 'save', failing_save)
    encoder.init_random(1)
    with pytest.raises(OSError, match='killed'):
        save(2)
    assert open(path, 'rb').read() == old
    assert os.listdir(tmp_path) == [osp.basename(path)]  # no partial or temporary file


# A Runner with max_keep_ckpts=1 that saves at every iteration; ``block`` makes
# the write of iter_2.pth hang half-way (a kill comes).
ROTATION_CHILD = textwrap.dedent('''
    import os, sys, time
    import torch
    from torch.utils.data import DataLoader
    import npdg
    from mmengine.fileio.backends import local_backend
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.w(inputs)
            return dict(loss=out.pow(2).mean()) if mode == 'loss' else out

    work, ready = sys.argv[1], sys.argv[2]
    real_put = local_backend.LocalBackend.put

    def blocking_put(self, obj, filepath):
        if 'iter_2' not in os.path.basename(str(filepath)):
            return real_put(self, obj, filepath)
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
        present = sorted(n for n in os.listdir(work) if n.endswith('.pth'))
        open(ready, 'w').write(' '.join(present))
        time.sleep(120)

    local_backend.LocalBackend.put = blocking_put
    Runner(model=Toy(), work_dir=work, log_level='WARNING',
           train_dataloader=DataLoader([dict(inputs=torch.ones(2))] * 8, batch_size=1),
           optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
           train_cfg=dict(by_epoch=False, max_iters=int(sys.argv[3])),
           default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1,
                                              by_epoch=False, max_keep_ckpts=1))).train()
''')


def test_kill_during_a_save_with_max_keep_ckpts_1_leaves_the_kept_checkpoint(tmp_path):
    """mmengine removes the kept checkpoint before writing the next; npdg after."""
    from npdg.utils.checkpoint_io import MANIFEST, load_from_local
    from npdg.utils.resume import resolve_resume
    work, ready = tmp_path / 'W', tmp_path / 'ready'
    work.mkdir()
    child = subprocess.Popen([sys.executable, '-c', ROTATION_CHILD, str(work), str(ready), '3'],
                             env=dict(os.environ, OMP_NUM_THREADS='1'))
    _wait_then_kill(child, ready)
    assert ready.read_text() == 'iter_1.pth'  # still there while iter_2 was written
    assert not (work / 'iter_2.pth').exists()
    assert (work / 'last_checkpoint').read_text() == 'iter_1.pth'
    assert set(json.load(open(work / MANIFEST))) == {'iter_1.pth'}
    assert load_from_local(str(work / 'iter_1.pth'))['meta']['iter'] == 1
    path, ckpt, _ = resolve_resume(str(work))
    assert path == str(work / 'iter_1.pth') and ckpt['meta']['iter'] == 1


def test_max_keep_ckpts_still_removes_the_old_checkpoints_after_the_new_one(tmp_path):
    from npdg.utils.checkpoint_io import MANIFEST, TEMP_MARK, is_trusted
    work = tmp_path / 'W'
    child = ROTATION_CHILD.replace("'iter_2' not in", "'never' not in")  # nothing blocks
    proc = subprocess.run([sys.executable, '-c', child, str(work), str(tmp_path / 'r'), '3'],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == ['iter_3.pth']
    assert not any(TEMP_MARK in n for n in os.listdir(work))
    assert set(json.load(open(work / MANIFEST))) == {'iter_3.pth'}
    assert is_trusted(str(work / 'iter_3.pth'))
    assert (work / 'last_checkpoint').read_text() == 'iter_3.pth'
