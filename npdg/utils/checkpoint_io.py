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

import torch

TRUST_ENV = 'NPDG_TRUSTED_CHECKPOINTS'
MANIFEST = '.npdg_trusted.json'
GUARD_KEY = 'npdg_pruned_model'

_state = threading.local()


class UntrustedCheckpointError(RuntimeError):
    """A checkpoint needs full unpickling but nobody vouched for it."""


class PrunedCheckpointError(RuntimeError):
    """A pruned model's checkpoint was unpickled outside npdg's loader."""


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
    tmp = _manifest_path(path) + f'.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, _manifest_path(path))


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
    """``torch.save`` a checkpoint and record it as trusted.

    Args:
        obj (dict): The checkpoint.
        path (str): Output file.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(obj, path)
    record_trusted(path)


def load_from_local(filename, map_location=None):
    """Load a local checkpoint under the trust model (mmengine's '' scheme).

    Args:
        filename (str): Path of the checkpoint file.
        map_location (str, optional): Same as :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If the file does not exist.
        UntrustedCheckpointError: If it needs full unpickling and is not trusted.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint file {filename!r} not found. Check the path given to '
            '--resume/--checkpoint/load_from (or the work dir\'s last_checkpoint).')
    if is_trusted(filename):
        with open_guard():
            return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
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
