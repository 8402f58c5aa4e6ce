"""The compatibility layer: mmcv.ops stand-in and trusted checkpoint loading."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import npdg  # noqa: F401
from npdg import compat


def run_python(code):
    """Run ``code`` in a fresh interpreter and return its stdout."""
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.skipif(compat.mmcv_has_compiled_ops(), reason='full mmcv installed')
def test_standin_installed_without_compiled_ops():
    out = run_python("""
        import sys
        import npdg
        ops = sys.modules['mmcv.ops']
        assert getattr(ops, '__npdg_standin__', False)
        import mmseg.models  # fails without the stand-in
        from mmcv.ops import point_sample, sigmoid_focal_loss
        try:
            from mmcv.ops import DeformConv2d
        except ModuleNotFoundError as e:
            print('MNF', 'full mmcv' in str(e))
        # mmseg's optional imports catch ModuleNotFoundError only
        from mmseg.models.decode_heads import psa_head
        print('PSAMask', psa_head.PSAMask is None)
    """)
    assert 'MNF True' in out
    assert 'PSAMask True' in out


def test_standin_not_installed_when_compiled_ops_exist():
    out = run_python("""
        import importlib.machinery, sys, types
        fake = types.ModuleType('mmcv._ext')
        fake.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', None)
        sys.modules['mmcv._ext'] = fake
        import importlib.util
        spec = importlib.util.spec_from_file_location('npdg_compat', %r)
        compat = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(compat)  # the module alone, not npdg/__init__
        assert compat.mmcv_has_compiled_ops()
        assert compat.install_mmcv_ops_standin() is False
        print('untouched', 'mmcv.ops' not in sys.modules)
    """ % compat.__file__)
    assert 'untouched True' in out


def test_standin_is_idempotent():
    assert compat.install_mmcv_ops_standin() == (not compat.mmcv_has_compiled_ops()) or \
        compat.mmcv_has_compiled_ops()
    first = sys.modules['mmcv.ops']
    compat.apply()
    assert sys.modules['mmcv.ops'] is first


@pytest.mark.parametrize('gamma,alpha', [(2.0, 0.25), (1.0, 0.5)])
def test_sigmoid_focal_loss_matches_mmseg_reference(gamma, alpha):
    from mmseg.models.losses.focal_loss import py_sigmoid_focal_loss
    torch.manual_seed(0)
    logits = torch.randn(12, 5)
    target = torch.randint(0, 6, (12,))  # 5 == background
    ours = compat._sigmoid_focal_loss(logits, target, gamma, alpha, None, 'none')
    one_hot = torch.nn.functional.one_hot(target, 6)[:, :5].float()
    ref = py_sigmoid_focal_loss(logits, one_hot, gamma=gamma, alpha=alpha,
                                reduction='none')
    assert torch.allclose(ours, ref, atol=1e-6)
    assert torch.isclose(compat._sigmoid_focal_loss(logits, target, gamma, alpha),
                         ref.mean(), atol=1e-6)


def _mmengine_like_checkpoint():
    from mmengine.logging import HistoryBuffer
    return dict(state_dict=dict(w=torch.arange(3.0)),
                message_hub=dict(buf=HistoryBuffer([1.0, 2.0], [1, 1])),
                meta=dict(arr=np.arange(4)))


def test_loader_reads_checkpoints_npdg_wrote(tmp_path):
    """mmengine's save_checkpoint (CheckpointHook) records what it writes."""
    from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint
    path = tmp_path / 'ckpt.pth'
    save_checkpoint(_mmengine_like_checkpoint(), str(path))
    if compat.torch_loads_weights_only():
        with pytest.raises(Exception):
            torch.load(path)  # the default refuses non-tensor globals
    ckpt = CheckpointLoader.load_checkpoint(str(path))
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(3.0))
    assert np.array_equal(ckpt['meta']['arr'], np.arange(4))


def test_loader_refuses_untrusted_pickles_until_named(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import CheckpointLoader

    from npdg.utils.checkpoint_io import TRUST_ENV, UntrustedCheckpointError, record_trusted
    path = tmp_path / 'foreign.pth'
    torch.save(_mmengine_like_checkpoint(), path)  # not written through npdg
    with pytest.raises(UntrustedCheckpointError, match=r'foreign\.pth.*HistoryBuffer.*' + TRUST_ENV):
        CheckpointLoader.load_checkpoint(str(path))
    monkeypatch.setenv(TRUST_ENV, str(tmp_path))  # a folder the user vouches for
    assert torch.equal(CheckpointLoader.load_checkpoint(str(path))['state_dict']['w'],
                       torch.arange(3.0))
    monkeypatch.delenv(TRUST_ENV)
    record_trusted(str(path))  # tools/trust_checkpoint.py
    CheckpointLoader.load_checkpoint(str(path))
    torch.save(dict(_mmengine_like_checkpoint(), extra=1), path)  # content changed
    with pytest.raises(UntrustedCheckpointError):
        CheckpointLoader.load_checkpoint(str(path))


def test_loader_reads_plain_weights_safely(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    path = tmp_path / 'resnet.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2)), meta=dict(epoch=3)), path)
    assert CheckpointLoader.load_checkpoint(str(path))['meta']['epoch'] == 3


def test_loader_name_is_logged_whole(tmp_path, capsys):
    from mmengine.runner.checkpoint import CheckpointLoader
    path = tmp_path / 'w.pth'
    torch.save(dict(w=torch.ones(1)), path)
    CheckpointLoader.load_checkpoint(str(path), logger=None)
    assert 'Loads checkpoint by local backend' in capsys.readouterr().out


def test_trusted_loader_names_missing_file(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'))


def test_trust_model_loader_on_every_torch(monkeypatch):
    """Older torch unpickles everything by default: npdg's loader is used there too."""
    from mmengine.runner.checkpoint import CheckpointLoader

    from npdg.utils.checkpoint_io import load_from_local
    monkeypatch.setattr(torch, '__version__', '2.5.1+cpu')
    assert not compat.torch_loads_weights_only()
    assert compat.install_trusted_checkpoint_loader() is True
    assert CheckpointLoader._get_checkpoint_loader('/x/y.pth') is load_from_local
    monkeypatch.setattr(torch, '__version__', '2.6.0')
    assert compat.torch_loads_weights_only()


def test_patched_libraries_are_the_checked_versions():
    from npdg.compat import CHECKED_VERSIONS, patched_library_versions
    versions = patched_library_versions()
    assert set(versions) == set(CHECKED_VERSIONS)
    assert all(checked for _, checked in versions.values()), versions


def test_recorder_refuses_a_torch_pruning_without_the_patched_function(monkeypatch):
    import torch_pruning as tp

    from npdg.pruning.optimizer_sync import PruningRecorder
    from npdg.pruning.recorder import check_torch_pruning
    assert check_torch_pruning() is tp.pruner.function.BasePruningFunc

    class Other:
        pass
    monkeypatch.setattr(tp.pruner.function, 'BasePruningFunc', Other)
    with pytest.raises(RuntimeError, match='torch-pruning==1.6.0'):
        with PruningRecorder(torch.nn.Linear(2, 2)):
            pass
