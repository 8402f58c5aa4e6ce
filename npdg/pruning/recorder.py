"""Record the kept map of a torch-pruning call (patches one private function, scoped).

See :mod:`npdg.compat` for the pinned torch-pruning version this was checked against.
"""
import warnings

from ..analysis.inference_path import unwrap_model
from .kept import _as_index, infer_kept_indices, kept_shape, snapshot_params

# --------------------------------------------------------------------------
# Recording torch-pruning
# --------------------------------------------------------------------------
TORCH_PRUNING_CHECKED = '1.6.'  # the version the interception was checked against


def check_torch_pruning():
    """The torch-pruning internals PruningRecorder relies on, or a clear error.

    Returns:
        type: ``BasePruningFunc`` (its ``_prune_parameter_and_grad`` exists).

    Raises:
        RuntimeError: When the private function is gone (another torch-pruning).
    """
    import torch_pruning as tp
    base = getattr(getattr(getattr(tp, 'pruner', None), 'function', None),
                   'BasePruningFunc', None)
    if base is None or '_prune_parameter_and_grad' not in base.__dict__:
        raise RuntimeError(
            f'torch-pruning {getattr(tp, "__version__", "?")} has no '
            'BasePruningFunc._prune_parameter_and_grad, which npdg\'s PruningRecorder '
            f'intercepts; npdg was checked with torch-pruning {TORCH_PRUNING_CHECKED}x '
            '(pip install "torch-pruning==1.6.0").')
    if not str(getattr(tp, '__version__', '')).startswith(TORCH_PRUNING_CHECKED):
        warnings.warn(f'torch-pruning {tp.__version__}: npdg\'s PruningRecorder was checked '
                      f'with {TORCH_PRUNING_CHECKED}x; the kept-index record is '
                      'verified after every prune, so a mismatch fails loudly.')
    return base


class PruningRecorder:
    """Record which indices every pruned parameter kept.

    Use it around torch-pruning on ``model`` (or on a wrapper that contains
    ``model``, e.g. a module that runs backbone -> decode_head and
    auxiliary_head for tracing)::

        with PruningRecorder(segmentor) as rec:
            for group in pruner.step(interactive=True):
                group.prune()
        sync_optimizer(optimizer, segmentor, rec.old_params, rec.kept)

    While active it wraps ``tp.pruner.function.BasePruningFunc.
    _prune_parameter_and_grad`` (all tp 1.6.1 layer pruners go through it),
    mapping the old parameter object to its name; composing prunings of the
    same parameter works because the new object is mapped to the same name.
    On exit, parameters that changed without a record (hand slicing such as
    ``npdg.models.apply_removed_channels`` slicing a ``head_gate``, a custom
    tp pruner that bypasses the helper) are recovered with
    :func:`infer_kept_indices` or marked unknown (None) with a warning.
    Hand slicing with known indices can be recorded with :meth:`add`.

    Args:
        model (nn.Module): The model whose parameter names are used (a
            wrapper is unwrapped).

    Attributes:
        old_params (dict[str, nn.Parameter]): Parameters before pruning.
        kept (dict[str, list | None]): The kept map (filled on exit).
    """

    def __init__(self, model):
        self.model = unwrap_model(model)
        self.old_params = {}
        self.kept = {}
        self._names = {}
        self._saved = None
        self._active = False

    def __enter__(self):
        """Snapshot the parameters and start intercepting torch-pruning."""
        if self._active:
            raise RuntimeError('PruningRecorder is already active.')
        base = check_torch_pruning()
        self.old_params = snapshot_params(self.model)
        self.kept = {}
        self._names = {p: n for n, p in self.old_params.items()}
        self._saved = base.__dict__['_prune_parameter_and_grad']
        recorder, original = self, self._saved

        def recording(func_self, weight, keep_idxs, pruning_dim):
            new = original(func_self, weight, keep_idxs, pruning_dim)
            recorder._record(weight, new, keep_idxs, pruning_dim)
            return new

        base._prune_parameter_and_grad = recording
        self._active = True
        return self

    def __exit__(self, exc_type, exc, tb):
        """Stop intercepting; on success, check and complete the record."""
        import torch_pruning as tp
        tp.pruner.function.BasePruningFunc._prune_parameter_and_grad = \
            self._saved
        self._active = False
        self._names = {}
        if exc_type is None:
            self._complete()
        return False

    def _record(self, old, new, keep_idxs, dim):
        """Remember one ``index_select`` applied by torch-pruning."""
        name = self._names.pop(old, None)
        if name is None:
            return  # not a parameter of ``self.model``
        dim = dim % old.dim()
        self.kept.setdefault(name, []).append((dim, _as_index(keep_idxs)))
        self._names[new] = name

    def add(self, name, dim, kept_idx):
        """Record a slice made by hand, inside the ``with`` block.

        E.g. after :func:`npdg.models.remove_heads` sliced the parameters
        of attention ``attn_name``: ``rec.add(f'{attn_name}.head_gate', 0,
        kept_heads)`` for each entry of the map it returns (as
        :class:`npdg.pruning.UnitPruner` does).

        Args:
            name (str): Parameter name in the model.
            dim (int): Sliced dimension.
            kept_idx (Sequence[int] | Tensor): Kept indices (in the
                parameter's numbering just before this slice).
        """
        if not self._active:
            raise RuntimeError('PruningRecorder.add must be called inside '
                               'the with block, right after the slice.')
        if name not in self.old_params:
            raise KeyError(f'PruningRecorder.add: {name!r} is not a parameter'
                           ' of the recorded model (use model-level names).')
        self.kept.setdefault(name, []).append((int(dim) % max(
            self.old_params[name].dim(), 1), _as_index(kept_idx)))

    def _complete(self):
        """Fill in changed parameters that torch-pruning did not record."""
        current = dict(self.model.named_parameters())
        for name, old in self.old_params.items():
            new = current.get(name)
            if new is None or new is old and name not in self.kept:
                continue
            steps = self.kept.get(name)
            if steps is not None and \
                    kept_shape(old.shape, steps) == tuple(new.shape):
                continue
            inferred = infer_kept_indices(old, new)
            if inferred is None:
                warnings.warn(
                    f'PruningRecorder: {name!r} changed from '
                    f'{tuple(old.shape)} to {tuple(new.shape)} outside '
                    'torch-pruning and its kept indices cannot be recovered '
                    'exactly; its optimizer state will be reset. Record it '
                    'with PruningRecorder.add(name, dim, kept_idx).')
            self.kept[name] = inferred
