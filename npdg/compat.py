"""Compatibility shims applied before anything imports mmseg.

Two gaps between the pinned CPU stack and what mmseg 1.2.x expects are closed
here, each only where it exists:

* **mmcv-lite has no compiled ops.** mmseg imports ``mmcv.ops`` at module level
  in a few places, and ``mmcv/ops/__init__.py`` loads the compiled extension,
  so ``import mmseg.models`` fails with ``No module named 'mmcv._ext'``. When
  (and only when) ``mmcv._ext`` cannot be found, a stand-in ``mmcv.ops`` module
  is put into ``sys.modules``. It exposes the pure-PyTorch ``point_sample`` and
  a PyTorch ``sigmoid_focal_loss``; any other name raises
  ``ModuleNotFoundError``, which is the type mmseg's optional imports catch.
  With full mmcv installed nothing is touched.
* **torch >= 2.6 loads with ``weights_only=True``.** mmengine 0.10.x calls
  ``torch.load`` without arguments, so ``resume`` and ``load_from`` fail on
  ordinary MMEngine checkpoints. The local-file loader is re-registered with
  npdg's trust model (:mod:`npdg.utils.checkpoint_io`): full unpickling only
  for files npdg wrote (recorded when mmengine's ``save_checkpoint`` writes
  them) or the user named; torch's safe loader for anything else.
* **mmengine writes checkpoints in place and ``last_checkpoint`` as an
  absolute path.** Local checkpoints are saved atomically (temporary file,
  fsync, rename) before they are recorded as trusted, and ``last_checkpoint``
  names the file relative to the work dir; mmengine's auto-resume resolves it
  against the work dir and never follows a name outside it silently
  (:mod:`npdg.utils.resume`).
* **mmengine loads a pruned checkpoint partly.** ``_load_checkpoint_to_model``
  is wrapped to rebuild a checkpoint's pruned structure first and load it
  strictly, so ``load_checkpoint`` and mmseg's ``init_model`` never build a
  half-random net from a pruned file, whichever runner or script loads it.

* **mmengine 0.10.x cannot start CPU-only distributed runs.** Its PyTorch
  launcher calls ``torch.cuda.set_device`` unconditionally, which fails on a
  CPU build of torch. Only where CUDA is unavailable, the launcher is replaced
  by one that initialises the process group (gloo) without touching CUDA.

All are idempotent and run from ``npdg/__init__.py``, which every entry point
(and every spawned DataLoader worker) imports.

What needs no global change lives in npdg's own runner,
:class:`npdg.engine.NpdgRunner` (``runner_type = 'NpdgRunner'`` in every npdg
config; mmseg's tools build it through ``RUNNERS``): the ``'${name}'``
settings are resolved in its ``from_cfg``, SegFormer attention is converted
per head in its ``build_model``, and its ``register_hooks`` adds
``PrunedCheckpointHook`` where a config lacks it. mmengine's ``Runner`` class
itself is not changed (tests/test_engine.py checks it after ``import npdg``).

Two more patches are not global and live where they act:

* :class:`npdg.pruning.recorder.PruningRecorder` wraps torch-pruning's private
  ``BasePruningFunc._prune_parameter_and_grad`` only inside its ``with``
  block (and checks the function exists,
  :func:`npdg.pruning.recorder.check_torch_pruning`);
* :func:`flush_denormals` sets ``torch.set_flush_denormal(True)``, called by
  the command-line entry points only (tools/, benchmarks/), never by library
  code.

:data:`CHECKED_VERSIONS` lists the versions every patch was checked against;
:func:`patched_library_versions` reports the installed ones (docs/reliability.md "What npdg
patches").
"""
import importlib.util
import os.path as osp
import sys
import types
import warnings

import torch
import torch.nn.functional as F

STANDIN_ATTR = '__npdg_standin__'


def mmcv_has_compiled_ops() -> bool:
    """Return whether the compiled mmcv extension ``mmcv._ext`` is present.

    Returns:
        bool: True when full mmcv (with ops) is installed.
    """
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def _sigmoid_focal_loss(input, target, gamma=2.0, alpha=0.25, weight=None,
                        reduction='mean'):
    """PyTorch version of ``mmcv.ops.sigmoid_focal_loss``.

    Args:
        input (Tensor): Logits of shape (N, C).
        target (Tensor): Class indices of shape (N,); ``C`` means background.
        gamma (float): Focusing parameter.
        alpha (float): Balance between positives and negatives.
        weight (Tensor, optional): Per-class weight of shape (C,).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.

    Returns:
        Tensor: The loss, reduced as asked.
    """
    num_classes = input.size(1)
    one_hot = F.one_hot(target.long(), num_classes + 1)[:, :num_classes]
    one_hot = one_hot.type_as(input)
    prob = input.sigmoid()
    pt = (1 - prob) * one_hot + prob * (1 - one_hot)
    focal_weight = (alpha * one_hot + (1 - alpha) * (1 - one_hot)) * pt.pow(gamma)
    loss = F.binary_cross_entropy_with_logits(
        input, one_hot, reduction='none') * focal_weight
    if weight is not None:
        loss = loss * weight.view(1, -1)
    if reduction == 'mean':
        return loss.mean()
    if reduction == 'sum':
        return loss.sum()
    return loss


def install_mmcv_ops_standin(force: bool = False) -> bool:
    """Put a stand-in ``mmcv.ops`` into ``sys.modules`` if compiled ops are missing.

    Args:
        force (bool): Install even when compiled ops exist (tests only).

    Returns:
        bool: True when the stand-in is (now) installed.
    """
    current = sys.modules.get('mmcv.ops')
    if current is not None and getattr(current, STANDIN_ATTR, False):
        return True
    if not force and (current is not None or mmcv_has_compiled_ops()):
        return False
    import mmcv
    ops_dir = osp.join(osp.dirname(mmcv.__file__), 'ops')
    module = types.ModuleType('mmcv.ops')
    module.__path__ = [ops_dir]
    module.__file__ = osp.join(ops_dir, '__init__.py')
    module.__package__ = 'mmcv.ops'
    setattr(module, STANDIN_ATTR, True)
    # mmcv.cnn warns at import that the compiled deformable attention is
    # missing; with the stand-in that is expected, so keep the logs clean.
    warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformable')
    sys.modules['mmcv.ops'] = module
    mmcv.ops = module
    # Pure-PyTorch submodule; importable through the real ops/ folder.
    from mmcv.ops.point_sample import point_sample
    module.point_sample = point_sample
    module.sigmoid_focal_loss = _sigmoid_focal_loss

    def __getattr__(name):
        if name.startswith('__'):
            raise AttributeError(name)
        raise ModuleNotFoundError(
            f'mmcv.ops.{name} needs the compiled mmcv ops, but only mmcv-lite '
            'is installed. Install full mmcv 2.1.x (see docs/gpu.md) '
            'to use it.', name='mmcv._ext')

    module.__getattr__ = __getattr__
    return True


def torch_loads_weights_only() -> bool:
    """Return whether this torch defaults ``torch.load`` to ``weights_only``.

    Returns:
        bool: True for torch >= 2.6.
    """
    version = torch.__version__.split('+')[0].split('.')
    major, minor = int(version[0]), int(version[1])
    return (major, minor) >= (2, 6)


def install_trusted_checkpoint_loader() -> bool:
    """Register npdg's local loader (the trust model) in mmengine, on every torch.

    Under torch >= 2.6 mmengine's own loader cannot read MMEngine checkpoints;
    under older torch it unpickles everything and would refuse npdg's
    pruned-model guard. npdg's loader unpickles fully only files npdg wrote or
    the user named (:mod:`npdg.utils.checkpoint_io`) and uses torch's safe
    loader otherwise.

    Returns:
        bool: True (the loader is registered).
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from npdg.utils.checkpoint_io import load_from_local
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    return True


def _wrap(module, name, make):
    """Replace ``module.name`` by ``make(original)`` once (idempotent)."""
    original = getattr(module, name)
    if getattr(original, '__npdg_wrapped__', False):
        return False
    wrapper = make(original)
    wrapper.__npdg_wrapped__ = True
    wrapper.__wrapped__ = original
    wrapper.__doc__ = original.__doc__
    setattr(module, name, wrapper)
    return True


def _local_file(filename, file_client_args=None, backend_args=None):
    """Whether mmengine would write ``filename`` to the local disk."""
    if '://' in str(filename):
        return False
    if file_client_args is not None and file_client_args.get('backend', 'disk') not in (
            'disk', 'local'):
        return False
    return backend_args is None or backend_args.get('backend', 'local') == 'local'


def install_checkpoint_recording() -> bool:
    """Save every local checkpoint atomically and record it as written by npdg.

    Wraps ``mmengine.runner.checkpoint.save_checkpoint`` (and the name the
    Runner imported): a local file is written by mmengine's own code to a
    temporary file beside it (``<name>.tmp-<pid>``), which is fsynced and
    renamed over the target (:func:`npdg.utils.checkpoint_io.atomic_path`), so
    a kill mid-save leaves the previous file, never a half-written one; then
    the file's SHA-256 goes to ``.npdg_trusted.json`` beside it
    (:func:`npdg.utils.checkpoint_io.record_trusted`). Checked against
    mmengine 0.10.x.

    Returns:
        bool: True when installed now.
    """
    from mmengine.runner import checkpoint as ckpt_module
    from mmengine.runner import runner as runner_module

    def make(original):
        def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
            if not _local_file(filename, file_client_args, backend_args):
                return original(checkpoint, filename, file_client_args=file_client_args,
                                backend_args=backend_args)
            from npdg.utils.checkpoint_io import atomic_path, record_trusted
            with atomic_path(str(filename)) as tmp:
                original(checkpoint, tmp, file_client_args=file_client_args,
                         backend_args=backend_args)
            record_trusted(str(filename))
        return save_checkpoint

    done = _wrap(ckpt_module, 'save_checkpoint', make)
    runner_module.save_checkpoint = ckpt_module.save_checkpoint
    return done


class _DeferredRemovals:
    """A CheckpointHook's file backend whose ``remove``/``rmtree`` wait.

    Everything else goes to the real backend. :meth:`run` then removes what
    was asked, except ``keep`` (the checkpoint just written).

    Args:
        backend: The hook's ``file_backend``.
    """

    def __init__(self, backend):
        self._backend = backend
        self.pending = []

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def remove(self, filepath):
        self.pending.append(('remove', filepath))

    def rmtree(self, dir_path):
        self.pending.append(('rmtree', dir_path))

    def run(self, keep=None):
        """Do the removals asked for; return the removed paths."""
        done = []
        for method, path in self.pending:
            if keep is not None and str(path) == str(keep):
                continue
            getattr(self._backend, method)(path)
            done.append(str(path))
        self.pending = []
        return done


def install_work_dir_resume() -> bool:
    """Resume a work dir from its own files, also through mmengine's auto-resume.

    * ``CheckpointHook._save_checkpoint_with_step`` (the one place that writes
      ``last_checkpoint``) is followed by :func:`npdg.utils.resume.
      write_last_checkpoint`: a name relative to the work dir, so that a
      moved or copied work dir resumes from its own checkpoints;
    * with ``max_keep_ckpts > 0`` mmengine removes the oldest kept checkpoint
      *before* it writes the new one, so a kill mid-write could leave no
      intact checkpoint (always the case with ``max_keep_ckpts=1``). The
      wrapper defers that removal (the hook's ``file_backend.remove`` /
      ``rmtree`` are recorded, not run, during the save) until the new file
      has been renamed into place and ``last_checkpoint`` names it; then the
      old file goes (and its record in ``.npdg_trusted.json``). If the save
      raises, the old file stays. The folder briefly holds
      ``max_keep_ckpts + 1`` checkpoints. Without ``max_keep_ckpts`` nothing
      changes;
    * ``find_latest_checkpoint`` (``Runner`` with ``resume=True`` and no
      ``load_from``) becomes :func:`npdg.utils.resume.find_resume_checkpoint`:
      relative names resolve against the work dir, and a name outside it is
      not followed silently (the work dir's own file is used, and the reason
      logged).

    Checked against mmengine 0.10.x.

    Returns:
        bool: True when installed now.
    """
    import logging

    from mmengine.hooks import CheckpointHook
    from mmengine.runner import checkpoint as ckpt_module
    from mmengine.runner import runner as runner_module

    def make_save(original):
        def _save_checkpoint_with_step(self, runner, step, meta):
            backend = getattr(self, 'file_backend', None)
            deferred = None
            if self.max_keep_ckpts > 0 and backend is not None:
                deferred = self.file_backend = _DeferredRemovals(backend)
            try:
                original(self, runner, step, meta)
            finally:
                if deferred is not None:
                    self.file_backend = backend
            from mmengine.dist import is_main_process
            if is_main_process():
                from npdg.utils.resume import write_last_checkpoint
                write_last_checkpoint(runner.work_dir, self.last_ckpt)
            if deferred is not None:
                from npdg.utils.checkpoint_io import forget_removed
                for path in deferred.run(keep=self.last_ckpt):
                    forget_removed(path)
        return _save_checkpoint_with_step

    def make_find(original):
        def find_latest_checkpoint(path):
            from mmengine.logging import print_log

            from npdg.utils.resume import find_resume_checkpoint
            found, note = find_resume_checkpoint(path)
            if note:
                print_log(note, logger='current', level=logging.WARNING)
            return found
        return find_latest_checkpoint

    done = _wrap(CheckpointHook, '_save_checkpoint_with_step', make_save)
    _wrap(ckpt_module, 'find_latest_checkpoint', make_find)
    runner_module.find_latest_checkpoint = ckpt_module.find_latest_checkpoint
    return done


def install_pruned_checkpoint_loading() -> bool:
    """Rebuild a checkpoint's pruned structure wherever mmengine loads weights.

    Two wrappers, so that no config that imports npdg can evaluate a pruned
    checkpoint half-random:

    * ``_load_checkpoint_to_model`` (``load_checkpoint``, ``Runner.
      load_checkpoint``, mmseg's ``init_model``): a checkpoint that carries
      ``meta['npdg']['structure']`` resizes the model to it first and must then
      match exactly (any shape or key mismatch is an error);
    * ``Runner.register_hooks``: a Runner without ``PrunedCheckpointHook``
      gets one (``check_unstructured=False``: checkpoints without a structure
      keep mmengine's behaviour), so a training run also re-points its
      optimizer, schedulers, DDP and EMA at a resized model.

    Checked against mmengine 0.10.x.

    Returns:
        bool: True when installed now.
    """
    from mmengine.runner import checkpoint as ckpt_module
    from mmengine.runner import runner as runner_module

    def make_loader(original):
        def _load_checkpoint_to_model(model, checkpoint, strict=False, logger=None,
                                      revise_keys=[(r'^module\.', '')]):
            from npdg.pruning.structure import fit_model_to_checkpoint, get_structure
            if get_structure(checkpoint) is not None:
                changed = fit_model_to_checkpoint(model, checkpoint, strict=True)
                strict = True
                if changed:
                    from mmengine.logging import print_log
                    print_log("[npdg] applied the checkpoint's pruned structure before loading "
                              'its weights (strict)', logger='current')
            return original(model, checkpoint, strict, logger, revise_keys)
        return _load_checkpoint_to_model

    done = _wrap(ckpt_module, '_load_checkpoint_to_model', make_loader)
    runner_module._load_checkpoint_to_model = ckpt_module._load_checkpoint_to_model
    return done


def _init_dist_pytorch_cpu(backend='gloo', init_backend='torch', **kwargs):
    """mmengine's PyTorch launcher without the CUDA device selection.

    Args:
        backend (str): Process-group backend (gloo on CPU).
        init_backend (str): Only ``'torch'`` is supported here.
        **kwargs: Passed to ``init_process_group``.
    """
    import torch.distributed as dist
    if init_backend != 'torch':
        raise ValueError(f'CPU-only distributed runs support init_backend="torch", '
                         f'got {init_backend!r}.')
    if backend == 'nccl':
        backend = 'gloo'
    dist.init_process_group(backend=backend, **kwargs)


def install_cpu_distributed_launcher(force: bool = False) -> bool:
    """Let mmengine start distributed runs on machines without CUDA.

    Args:
        force (bool): Install even when CUDA is available (tests only).

    Returns:
        bool: True when the CPU launcher was installed.
    """
    if torch.cuda.is_available() and not force:
        return False
    from mmengine.dist import utils as dist_utils
    dist_utils._init_dist_pytorch = _init_dist_pytorch_cpu
    return True


def install_settings_resolution() -> bool:
    """Make ``Runner.from_cfg`` resolve ``'${name}'`` settings and check keys.

    Global because mmseg 1.2's stock ``tools/test.py`` calls ``Runner.from_cfg``
    directly (it ignores ``runner_type``), and a pruned checkpoint must still
    evaluate there with npdg's configs. ``NpdgRunner.from_cfg`` resolves them
    too (resolving twice is a no-op).

    Returns:
        bool: True when the wrapper was installed now, False if it already was.
    """
    from mmengine.runner import Runner
    original = Runner.__dict__['from_cfg'].__func__
    if getattr(original, '__npdg_wrapped__', False):
        return False

    def from_cfg(cls, cfg):
        from npdg.utils.settings import check_top_level_keys, resolve_settings
        check_top_level_keys(cfg, source=getattr(cfg, 'filename', None) or 'the config')
        resolve_settings(cfg)
        return original(cls, cfg)

    from_cfg.__npdg_wrapped__ = True
    from_cfg.__wrapped__ = original
    from_cfg.__doc__ = original.__doc__
    Runner.from_cfg = classmethod(from_cfg)
    return True


# library -> version prefix the patches above were checked against
CHECKED_VERSIONS = dict(mmengine='0.10.', mmcv='2.1.', torch_pruning='1.6.', mmseg='1.2.')


def patched_library_versions():
    """Installed version of every patched library and whether it was checked.

    Returns:
        dict[str, tuple[str, bool]]: library -> (version, checked).
    """
    out = {}
    for name, prefix in CHECKED_VERSIONS.items():
        try:
            version = importlib.import_module(name).__version__
        except Exception:  # noqa: BLE001 - absent or broken: reported as such
            version = 'absent'
        out[name] = (version, version.startswith(prefix))
    return out




def flush_denormals():
    """Flush denormal floats to zero (CPU speed); for entry points only.

    On CPU, weights decayed towards zero become denormal floats, which can
    double the step time; flushing them changes nothing measurable. Library
    functions never call this: it changes a process-wide torch setting.
    """
    import torch
    torch.set_flush_denormal(True)


def apply() -> None:
    """Apply every shim that this environment needs (idempotent)."""
    install_mmcv_ops_standin()
    install_trusted_checkpoint_loader()
    install_checkpoint_recording()
    install_work_dir_resume()
    install_pruned_checkpoint_loading()
    install_cpu_distributed_launcher()
    install_settings_resolution()
