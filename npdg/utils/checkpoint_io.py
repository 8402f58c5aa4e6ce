"""Reading and writing checkpoint files: the trust model and the pruned-model guard.

**Trust model.** Unpickling a file can run arbitrary code, so torch >= 2.6
loads with ``weights_only=True``, which refuses the Python objects an
MMEngine training checkpoint holds (its message hub, numpy scalars). npdg's
local-file loader (:func:`load_from_local`, registered in mmengine by
:mod:`npdg.compat`) unpickles a file fully only when it is trusted:

* npdg wrote it: every checkpoint saved through mmengine's ``save_checkpoint``
  (CheckpointHook, ``runner.save_checkpoint``) or npdg's tools in a process
  that imported npdg is recorded, by SHA-256, in ``.npdg_trusted.json`` beside
  it; a file whose content no longer matches its record is not trusted;
* or the user named it: ``NPDG_TRUSTED_CHECKPOINTS`` lists files or folders
  (``os.pathsep``-separated) whose checkpoints are trusted, or
  ``python tools/trust_checkpoint.py FILE`` records it.

Anything else is loaded with torch's safe loader (``weights_only=True``):
plain weights (ImageNet backbones, ``state_dict`` files) load as before; a file
that needs more stops with a message naming the file and how to trust it.

**Atomic writes.** Every file npdg writes that a kill could leave half-written
(checkpoints, exports, the manifest) goes through :func:`atomic_path` /
:func:`atomic_write`: a temporary file in the same folder
(``<name>.tmp-<pid>``), flushed and fsynced, then renamed over the target, so
the target is either the old file or the complete new one. A checkpoint is
recorded as trusted only after the rename. A file that still cannot be read
(truncated by a copy, a full disk, an older writer) raises
:class:`DamagedCheckpointError` naming it.

**Pruned-model guard.** A pruned (or attention-converted) model's checkpoint
only loads into a model resized to its structure. Loaded by a tool that never
imported npdg it would load partly, with "size mismatch" warnings, and
evaluate a half-random network. So such checkpoints carry a
:class:`PrunedModelGuard`: with torch's safe loader it is an "Unsupported
global" error naming npdg; with full unpickling outside npdg's loader it
raises :class:`PrunedCheckpointError` saying how to load it. npdg's loader
opens it.
"""
import contextlib
import hashlib
import json
import os
import os.path as osp
import pickle
import threading
import zipfile

import torch

TRUST_ENV = 'NPDG_TRUSTED_CHECKPOINTS'
MANIFEST = '.npdg_trusted.json'
GUARD_KEY = 'npdg_pruned_model'

_state = threading.local()


class UntrustedCheckpointError(RuntimeError):
    """A checkpoint needs full unpickling but nobody vouched for it."""


class PrunedCheckpointError(RuntimeError):
    """A pruned model's checkpoint was unpickled outside npdg's loader."""


class DamagedCheckpointError(RuntimeError):
    """A checkpoint file is truncated or otherwise unreadable.

    Attributes:
        filename (str): The file.
        reason (str): What torch said.
        head (str): The message without its advice.
    """

    ADVICE = ' Resume or load an intact checkpoint instead: --resume PATH (or load_from=PATH).'

    def __init__(self, head, filename=None, reason=None, advice=ADVICE):
        super().__init__(head + advice)
        self.head, self.filename, self.reason = head, filename, reason

    def instead(self, intact, why=None):
        """The same error, naming the intact checkpoint to resume from instead.

        Args:
            intact (str | None): The newest intact checkpoint beside it, if any.
            why (str, optional): Why npdg did not resume from it by itself.

        Returns:
            DamagedCheckpointError: The new error.
        """
        if intact is None:
            advice = ' No intact checkpoint was found beside it.'
        else:
            advice = (f' The newest intact checkpoint beside it is {intact}: resume from it '
                      f'with --resume {intact}' + (f' ({why})' if why else '') + '.')
        return DamagedCheckpointError(self.head, self.filename, self.reason, advice)


TEMP_MARK = '.tmp-'


def temp_name(path):
    """The temporary file :func:`atomic_path` writes before renaming to ``path``."""
    return f'{path}{TEMP_MARK}{os.getpid()}'


def _fsync_dir(folder):
    """Make a rename in ``folder`` durable (where the platform allows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path):
    """Flush a closed file's content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Write ``path`` all or nothing, through a temporary path the caller fills.

    Yields ``<path>.tmp-<pid>`` in the same folder (created if needed); after
    the block the file is fsynced and renamed over ``path`` (then the folder
    is fsynced). If the block raises, the temporary file is removed and
    ``path`` is untouched.

    Args:
        path (str): The final file.

    Yields:
        str: The temporary path to write.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temp_name(osp.join(folder, osp.basename(path)))
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(folder)


@contextlib.contextmanager
def atomic_write(path, mode='wb'):
    """Open ``path`` for an all-or-nothing write (see :func:`atomic_path`).

    Args:
        path (str): The final file.
        mode (str): ``'wb'`` or ``'w'``.

    Yields:
        file: The open temporary file.
    """
    with atomic_path(path) as tmp:
        with open(tmp, mode) as f:
            yield f
            f.flush()


def _guard_open():
    return getattr(_state, 'guard_open', 0) > 0


@contextlib.contextmanager
def open_guard():
    """Let :class:`PrunedModelGuard` unpickle (npdg's own loading paths)."""
    _state.guard_open = getattr(_state, 'guard_open', 0) + 1
    try:
        yield
    finally:
        _state.guard_open -= 1


def _restore_guard(version):
    """Unpickle a :class:`PrunedModelGuard`: only inside npdg's loader."""
    if not _guard_open():
        raise PrunedCheckpointError(
            'This checkpoint holds a structurally pruned npdg model: its layers are smaller '
            'than the ones its config builds, so loading it without npdg would fill a '
            'half-random network. Load it through npdg: add '
            "custom_imports = dict(imports=['npdg']) to the config (npdg then rebuilds the "
            "structure before loading), or use npdg's tools/test.py, or export it with "
            'tools/export_pruned.py.')
    return PrunedModelGuard(version)


class PrunedModelGuard:
    """Marker stored under ``checkpoint['npdg_pruned_model']`` of pruned models.

    Args:
        version (int): Guard format version.
    """

    def __init__(self, version=1):
        self.version = version

    def __reduce__(self):
        return _restore_guard, (self.version, )

    def __eq__(self, other):
        return isinstance(other, PrunedModelGuard) and other.version == self.version

    def __repr__(self):
        return f'PrunedModelGuard(version={self.version})'


def file_digest(path):
    """SHA-256 of a file's content (hex)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _manifest_path(path):
    return osp.join(osp.dirname(osp.abspath(path)), MANIFEST)


def _read_manifest(path):
    try:
        with open(_manifest_path(path)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def record_trusted(path):
    """Record ``path`` (as it is now) as a checkpoint npdg trusts.

    Args:
        path (str): A local checkpoint file.
    """
    data = _read_manifest(path)
    data[osp.basename(path)] = file_digest(path)
    # Forget records of files that are gone (CheckpointHook's max_keep_ckpts).
    folder = osp.dirname(osp.abspath(path))
    data = {k: v for k, v in data.items() if osp.isfile(osp.join(folder, k))}
    with atomic_write(_manifest_path(path), 'w') as f:
        json.dump(data, f, indent=1, sort_keys=True)


def forget_removed(path):
    """Drop ``path``'s record from the manifest beside it once the file is gone.

    Args:
        path (str): A checkpoint that was removed (CheckpointHook's
            ``max_keep_ckpts``); remote paths and files still present are left.
    """
    if '://' in str(path) or osp.exists(path):
        return
    data = _read_manifest(path)
    if osp.basename(path) in data:
        del data[osp.basename(path)]
        with atomic_write(_manifest_path(path), 'w') as f:
            json.dump(data, f, indent=1, sort_keys=True)


def _named_by_user(path):
    real = osp.realpath(path)
    for entry in os.environ.get(TRUST_ENV, '').split(os.pathsep):
        if not entry:
            continue
        entry = osp.realpath(osp.expanduser(entry))
        if real == entry or (osp.isdir(entry) and real.startswith(entry + os.sep)):
            return True
    return False


def is_trusted(path):
    """Whether ``path`` may be unpickled fully (see the module docstring).

    Args:
        path (str): A local file.

    Returns:
        bool: True if the user named it or npdg recorded this exact content.
    """
    if _named_by_user(path):
        return True
    recorded = _read_manifest(path).get(osp.basename(path))
    return recorded is not None and recorded == file_digest(path)


def save_trusted(obj, path):
    """``torch.save`` a checkpoint atomically and record it as trusted.

    Args:
        obj (dict): The checkpoint.
        path (str): Output file.
    """
    with atomic_write(path) as f:
        torch.save(obj, f)
    record_trusted(path)


def _unreadable(error):
    """Whether a ``torch.load`` error means the file itself is broken."""
    if isinstance(error, (EOFError, zipfile.BadZipFile)):
        return True
    text = str(error)
    return any(mark in text for mark in (
        'PytorchStreamReader', 'failed finding central directory', 'Ran out of input',
        'pickle data was truncated', 'unexpected EOF', 'invalid load key'))


def _damaged(filename, error):
    """A :class:`DamagedCheckpointError` naming the file (torch's words kept)."""
    said = (str(error).strip().splitlines() or [type(error).__name__])[0]
    said = said.split(' This is an internal miniz error')[0][:200].rstrip('.')
    recorded = _read_manifest(filename).get(osp.basename(filename))
    changed = (' Its content no longer matches what npdg recorded when it wrote the file '
               f'({MANIFEST}).') if recorded is not None else ''
    return DamagedCheckpointError(
        f'Checkpoint {filename!r} is damaged or incomplete (truncated by a kill or a full '
        f'disk while it was written, or a partial copy), so it cannot be read.{changed} '
        f'torch said: "{said}".', filename, said)


def load_from_local(filename, map_location=None, mmap=False):
    """Load a local checkpoint under the trust model (mmengine's '' scheme).

    Args:
        filename (str): Path of the checkpoint file.
        map_location (str, optional): Same as :func:`torch.load`.
        mmap (bool): Map the tensors from the file instead of reading them
            (cheap inspection of a large checkpoint).

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If the file does not exist.
        DamagedCheckpointError: If the file is truncated or unreadable.
        UntrustedCheckpointError: If it needs full unpickling and is not trusted.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint file {filename!r} not found. Check the path given to '
            '--resume/--checkpoint/load_from (or the work dir\'s last_checkpoint).')
    extra = dict(mmap=True) if mmap else {}
    try:
        if is_trusted(filename):
            with open_guard():
                return torch.load(filename, map_location=map_location, weights_only=False,
                                  **extra)
        return _load_safely(filename, map_location, extra)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        if isinstance(error, (UntrustedCheckpointError, PrunedCheckpointError)) or \
                not _unreadable(error):
            raise
        raise _damaged(filename, error) from error


def _load_safely(filename, map_location, extra):
    """torch's safe loader; a refusal says how to trust the file."""
    try:
        return torch.load(filename, map_location=map_location, weights_only=True, **extra)
    except pickle.UnpicklingError as error:
        if _unreadable(error):
            raise
        lines = [ln.strip() for ln in str(error).splitlines() if 'Unsupported global' in ln]
        first = (lines[0] if lines else str(error).strip().splitlines()[0])[:300]
        first = first.replace('WeightsUnpickler error: ', '').split(' was not an allowed')[0]
        raise UntrustedCheckpointError(
            f'{filename!r} holds Python objects beyond tensors, and npdg did not write it '
            f'(no matching record in {MANIFEST} beside it), so it was not unpickled (that '
            f'can run arbitrary code). torch said: {first}. If you trust the file, name it: '
            f'{TRUST_ENV}={filename} (files or folders, separated by "{os.pathsep}"), or '
            f'`python tools/trust_checkpoint.py {filename}`.') from None


def load_checkpoint_file(filename, map_location='cpu'):
    """Read a checkpoint file the way npdg's tools do (local files: trust model).

    Args:
        filename (str): Local path or any URI mmengine understands.
        map_location (str): Same as :func:`torch.load`.

    Returns:
        dict: The checkpoint.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    return _load_checkpoint(filename, map_location=map_location)


load_from_local.__name__ = 'load_from_local'  # mmengine logs name[10:]: "local"
