"""Keep training going after a structural prune in the middle of a run.

Structural pruning (torch-pruning 1.6.1, ``npdg.models.remove_heads``)
replaces every pruned ``nn.Parameter`` by a new, smaller one. Everything that
held the old objects must follow: the optimizer (its ``param_groups`` and
per-parameter ``state``), an EMA copy of the model and the DDP wrapper.

The common currency is a *kept map*::

    {param_name: [(dim, kept_idx), ...]}

``param_name`` is the name in ``model.named_parameters()`` of the bare model
(no ``module.`` prefix of a DDP wrapper); each ``(dim, kept_idx)`` is one
``index_select(dim, kept_idx)`` that was applied to the parameter, in order
(a conv may first lose output channels in one group and then input channels
in another). ``None`` instead of the list means "changed, indices unknown":
its optimizer state is then dropped.

Pieces:

* :class:`PruningRecorder` builds the kept map around torch-pruning calls.
  It intercepts ``BasePruningFunc._prune_parameter_and_grad``, the single
  helper through which every torch-pruning 1.6.1 layer pruner replaces a
  parameter, so it sees the exact old parameter object, dimension and kept
  indices (grouped/depthwise convs, concat and flatten index mappings,
  LSTM/attention index expansion are all already resolved there). Changes
  made outside torch-pruning inside the context (e.g. a ``head_gate`` sliced
  by hand) are recovered by exact slice matching, or marked unknown.
* :func:`sync_optimizer` swaps the new parameters into the optimizer by name
  and slices their state; the optimizer object (and so the mmengine
  ``OptimWrapper`` and the param schedulers bound to it) is kept.
* :func:`rebuild_averaged_model` re-creates the EMA copy with the averages
  carried over.
* :func:`rebuild_after_prune` does all of it for an mmengine ``Runner``,
  including re-wrapping DDP.
"""
import copy
import warnings
from collections.abc import Mapping

import torch

from ..analysis.inference_path import unwrap_model

__all__ = [
    'PruningRecorder', 'snapshot_params', 'normalize_kept', 'prefix_kept',
    'merge_kept', 'apply_kept', 'kept_shape', 'infer_kept_indices',
    'sync_optimizer', 'rebuild_averaged_model', 'rebuild_after_prune',
    'unwrap_model'
]


# --------------------------------------------------------------------------
# Kept-map helpers
# --------------------------------------------------------------------------
def snapshot_params(model):
    """Name -> parameter object of the bare model, taken before pruning.

    Args:
        model (nn.Module): The model (a wrapper is unwrapped).

    Returns:
        dict[str, nn.Parameter]: The current parameter objects by name.
    """
    return dict(unwrap_model(model).named_parameters())


def _as_index(idx):
    """A 1-D long CPU tensor from a list, tensor or tp ``_HybridIndex`` list.

    Args:
        idx (Sequence[int] | Tensor): Indices.

    Returns:
        Tensor: Long tensor of shape ``(n,)``.
    """
    if torch.is_tensor(idx):
        return idx.detach().to('cpu', torch.long).reshape(-1)
    return torch.as_tensor([int(getattr(i, 'idx', i)) for i in idx],
                           dtype=torch.long)


def _normalize_steps(name, value):
    """One kept-map entry as a list of ``(dim, LongTensor)`` (or None)."""
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 2 and \
            isinstance(value[0], int):
        value = [value]  # remove_heads' single (dim, idx) tuple
    steps = []
    for step in value:
        if not (isinstance(step, (tuple, list)) and len(step) == 2):
            raise ValueError(
                f'kept[{name!r}]: expected (dim, kept_idx) pairs, got '
                f'{step!r}. Use the output of PruningRecorder.kept or '
                'prefix_kept(prefix, remove_heads(...)).')
        steps.append((int(step[0]), _as_index(step[1])))
    return steps


def normalize_kept(kept):
    """Bring a kept map to the canonical ``{name: [(dim, LongTensor)]}``.

    Accepts ``(dim, idx)`` tuples (the format of ``remove_heads``) as well as
    lists of them, and ``None`` (indices unknown).

    Args:
        kept (Mapping | None): Kept map.

    Returns:
        dict[str, list[tuple[int, Tensor]] | None]: Canonical kept map.
    """
    if kept is None:
        return {}
    if not isinstance(kept, Mapping):
        raise TypeError(f'kept must be a mapping param_name -> [(dim, idx)]'
                        f', got {type(kept).__name__}.')
    return {str(k): _normalize_steps(k, v) for k, v in kept.items()}


def prefix_kept(prefix, kept):
    """Prefix the names of a module-relative kept map.

    ``remove_heads(model.a.attn, heads)`` names parameters relative to the
    attention module (``'q.weight'``); the optimizer needs model names.

    Args:
        prefix (str): Module name in the model, e.g. ``'backbone.l.0.attn'``
            (empty for the model itself).
        kept (Mapping): Kept map relative to that module.

    Returns:
        dict: Canonical kept map with ``f'{prefix}.{name}'`` keys.
    """
    lead = f'{prefix}.' if prefix else ''
    return {lead + k: v for k, v in normalize_kept(kept).items()}


def merge_kept(*kept_maps):
    """Compose kept maps of successive prunes (applied left to right).

    Args:
        *kept_maps (Mapping): Kept maps in the order the prunes happened.

    Returns:
        dict: Canonical kept map; a name that is unknown (None) in any of
        them stays unknown.
    """
    merged = {}
    for kept in kept_maps:
        for name, steps in normalize_kept(kept).items():
            if name in merged and merged[name] is None or steps is None:
                merged[name] = None
            else:
                merged[name] = merged.get(name, []) + steps
    return merged


def apply_kept(tensor, steps):
    """Slice a tensor with a list of ``(dim, kept_idx)`` steps in order.

    Args:
        tensor (Tensor): Tensor shaped like the parameter before pruning.
        steps (list[tuple[int, Tensor]]): Kept steps.

    Returns:
        Tensor: The sliced tensor (a new tensor unless ``steps`` is empty).
    """
    for dim, idx in steps:
        tensor = tensor.index_select(dim, idx.to(tensor.device))
    return tensor


def kept_shape(shape, steps):
    """Shape that :func:`apply_kept` would produce, without data.

    Args:
        shape (Sequence[int]): Shape before pruning.
        steps (list[tuple[int, Tensor]]): Kept steps.

    Returns:
        tuple[int, ...]: Shape after the steps.

    Raises:
        ValueError: If a step's dimension or indices do not fit.
    """
    shape = list(shape)
    for dim, idx in steps:
        if not -len(shape) <= dim < len(shape):
            raise ValueError(f'dim {dim} out of range for shape {shape}')
        if idx.numel() and not 0 <= int(idx.min()) <= int(idx.max()) < \
                shape[dim]:
            raise ValueError(f'kept indices out of range for size '
                             f'{shape[dim]} of dim {dim}')
        shape[dim] = idx.numel()
    return tuple(shape)


# --------------------------------------------------------------------------
# Recovering kept indices by exact slice matching (fallback)
# --------------------------------------------------------------------------
def _rows(tensor, dim):
    """``tensor`` as a 2-D float64 matrix with one row per slice of ``dim``."""
    return tensor.detach().movedim(dim, 0).reshape(tensor.shape[dim], -1) \
        .to('cpu', torch.float64)


def infer_kept_indices(old, new):
    """Recover kept indices by matching ``new``'s slices to ``old``'s.

    Exact, never guessing: slices are compared for equality (``torch.unique``
    over rows), only one dimension may have shrunk, the match must be
    increasing, and any new slice equal to two or more old slices (e.g. a
    freshly initialised all-ones ``head_gate``) makes the answer unknown.

    Args:
        old (Tensor): Parameter before pruning.
        new (Tensor): Parameter after pruning.

    Returns:
        list[tuple[int, Tensor]] | None: ``[]`` if unchanged,
        ``[(dim, kept_idx)]`` if recovered, None if not recoverable.
    """
    if old.dim() != new.dim():
        return None
    changed = [d for d in range(old.dim()) if old.shape[d] != new.shape[d]]
    if not changed:
        return [] if torch.equal(old.detach().cpu(), new.detach().cpu()) \
            else None
    if len(changed) > 1 or new.shape[changed[0]] > old.shape[changed[0]]:
        return None
    dim = changed[0]
    old_rows, new_rows = _rows(old, dim), _rows(new, dim)
    _, ids = torch.unique(torch.cat([old_rows, new_rows]), dim=0,
                          return_inverse=True)
    old_ids, new_ids = ids[:len(old_rows)].tolist(), ids[len(old_rows):]
    first = {}
    for i, row_id in enumerate(old_ids):
        first[row_id] = i if row_id not in first else -1  # -1: ambiguous
    kept = [first.get(int(row_id), None) for row_id in new_ids]
    if any(k is None or k < 0 for k in kept) or \
            any(a >= b for a, b in zip(kept, kept[1:])):
        return None
    return [(dim, torch.as_tensor(kept, dtype=torch.long))]


# --------------------------------------------------------------------------
# Recording torch-pruning
# --------------------------------------------------------------------------
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
        import torch_pruning as tp
        self.old_params = snapshot_params(self.model)
        self.kept = {}
        self._names = {p: n for n, p in self.old_params.items()}
        base = tp.pruner.function.BasePruningFunc
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

        E.g. after ``npdg.models.prune_step_with_heads`` sliced the
        ``head_gate`` of attention ``attn_name``:
        ``rec.add(f'{attn_name}.head_gate', 0, kept_heads)``.

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


# --------------------------------------------------------------------------
# Optimizer
# --------------------------------------------------------------------------
def _torch_optimizers(optimizer):
    """The torch optimizers inside an optimizer / OptimWrapper(Dict).

    Args:
        optimizer: ``torch.optim.Optimizer``, mmengine ``OptimWrapper`` or
            ``OptimWrapperDict``.

    Returns:
        list[torch.optim.Optimizer]: The optimizers.
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        return [optimizer]
    from mmengine.optim import OptimWrapperDict
    if isinstance(optimizer, OptimWrapperDict):
        return [o for w in optimizer.values() for o in _torch_optimizers(w)]
    inner = getattr(optimizer, 'optimizer', None)
    if isinstance(inner, torch.optim.Optimizer):
        return [inner]
    raise TypeError(
        'sync_optimizer needs a torch optimizer, an mmengine OptimWrapper or '
        f'an OptimWrapperDict, got {type(optimizer).__name__}. If this is '
        "the runner's optim_wrapper config dict, call it after the runner "
        'built it (e.g. from a train hook).')


def _slice_state(name, old_param, state, steps):
    """Slice one parameter's optimizer state, or None to drop it.

    Tensors shaped like the old parameter are sliced; scalars and other
    values (``step``) are kept. Any other tensor shape cannot be sliced
    consistently, so the whole state is dropped (with a warning).
    """
    new_state = {}
    for key, value in state.items():
        if torch.is_tensor(value) and value.dim() > 0:
            if value.shape != old_param.shape:
                warnings.warn(
                    f'sync_optimizer: state {key!r} of {name!r} has shape '
                    f'{tuple(value.shape)}, not the parameter shape '
                    f'{tuple(old_param.shape)}; dropping this parameter\'s '
                    'state.')
                return None
            value = apply_kept(value, steps)
        new_state[key] = value
    return new_state


def _check_new_shape(name, old, new, steps):
    """Raise if the kept steps do not turn ``old``'s shape into ``new``'s."""
    try:
        shape = kept_shape(old.shape, steps)
    except ValueError as err:
        raise ValueError(f'sync_optimizer: kept[{name!r}] does not fit the '
                         f'old parameter: {err}') from err
    if shape != tuple(new.shape):
        raise ValueError(
            f'sync_optimizer: kept[{name!r}] turns shape {tuple(old.shape)} '
            f'into {shape}, but the model now has {tuple(new.shape)}. Record '
            'the prune with PruningRecorder (or pass the full kept map), or '
            'use reset_state=True.')


def _check_all_shapes(optimizers, names, current, kept):
    """Validate every replacement before the optimizers are touched."""
    for torch_opt in optimizers:
        for group in torch_opt.param_groups:
            for old in group['params']:
                name = names.get(old)
                new = current.get(name) if name is not None else None
                steps = kept.get(name, [])
                if new is not None and new is not old and steps is not None:
                    _check_new_shape(name, old, new, steps)


def _new_state_for(name, old, new, state, steps, reset_state):
    """State for the replacing parameter (None: start fresh)."""
    if not state or steps is None or (reset_state and steps):
        return None
    return _slice_state(name, old, state, steps)


def _sync_group(optimizer, group, names, current, kept, reset_state, stats):
    """Replace/drop the parameters of one param group in place."""
    params = []
    for old in group['params']:
        name = names.get(old)
        if name is None:
            params.append(old)  # not a parameter of the model: untouched
            continue
        new = current.get(name)
        state = optimizer.state.pop(old, None)
        if new is None:
            stats['removed'] += 1
            continue
        if new is old:
            if state is not None:
                optimizer.state[old] = state
            params.append(old)
            continue
        steps = kept.get(name, [])
        if steps is None and not reset_state:
            warnings.warn(f'sync_optimizer: kept indices of {name!r} are '
                          'unknown; its optimizer state is reset.')
        new_state = _new_state_for(name, old, new, state, steps, reset_state)
        if new_state is not None:
            optimizer.state[new] = new_state
            stats['sliced' if steps else 'carried'] += 1
        elif state:
            stats['reset'] += 1
        params.append(new)
        stats['replaced'] += 1
    group['params'] = params


def sync_optimizer(optimizer, model, old_params_by_name, kept,
                   reset_state=False):
    """Point an optimizer at the pruned model's parameters, state sliced.

    For every param group (order and hyper-parameters such as the ``lr``
    set by param schedulers are untouched), each old parameter is replaced by
    the model's current parameter of the same name; its state tensors shaped
    like the old parameter (SGD ``momentum_buffer``, Adam(W) ``exp_avg``,
    ``exp_avg_sq``, ``max_exp_avg_sq``) are sliced with the kept indices,
    scalars (``step``) are kept. Parameters no longer in the model are
    dropped from their group and the state; groups are kept even if they
    become empty, since param schedulers index groups by position.
    Parameters the optimizer holds that are not model parameters are left
    alone. Modifies the optimizer in place; the optimizer object, the
    ``OptimWrapper`` around it and the param schedulers bound to it stay
    valid, so the learning-rate schedule continues unbroken.

    Args:
        optimizer: ``torch.optim.Optimizer``, mmengine ``OptimWrapper`` or
            ``OptimWrapperDict``.
        model (nn.Module): The pruned model (a wrapper is unwrapped).
        old_params_by_name (Mapping[str, nn.Parameter]): Parameters before
            pruning, e.g. ``PruningRecorder.old_params`` or
            :func:`snapshot_params` taken before the prune.
        kept (Mapping): Kept map (see the module docstring; ``remove_heads``
            style ``(dim, idx)`` tuples accepted after :func:`prefix_kept`).
            A replaced parameter missing from it must have kept its shape
            (its state is carried over as is).
        reset_state (bool): Alternative to slicing: drop the state of every
            parameter whose shape changed (momentum/Adam moments restart for
            it, ``step`` too). Default False.

    Returns:
        dict[str, int]: Counts ``replaced``, ``sliced``, ``carried``,
        ``reset`` and ``removed``.
    """
    kept = normalize_kept(kept)
    current = snapshot_params(model)
    names = {p: n for n, p in old_params_by_name.items()}
    stats = dict(replaced=0, sliced=0, carried=0, reset=0, removed=0)
    _check_all_shapes(_torch_optimizers(optimizer), names, current, kept)
    for torch_opt in _torch_optimizers(optimizer):
        for group in torch_opt.param_groups:
            _sync_group(torch_opt, group, names, current, kept, reset_state,
                        stats)
    return stats


# --------------------------------------------------------------------------
# EMA
# --------------------------------------------------------------------------
def _carried_average(old, new, steps):
    """Old running average mapped to the new shape, or None to re-start."""
    if old is None:
        return None
    if steps:
        if kept_shape(old.shape, steps) != tuple(new.shape):
            return None
        return apply_kept(old, steps)
    if steps is None or old.shape != new.shape:
        return None
    return old


def rebuild_averaged_model(averaged, model, kept):
    """Re-create the copy inside an mmengine averaged model after a prune.

    ``ExponentialMovingAverage`` (any ``BaseAveragedModel``) holds a deep copy
    of the model; after pruning it has the old shapes. The copy is replaced
    by a fresh deep copy of the pruned model (so every structural attribute
    matches), then the running averages are carried over: sliced with the
    kept indices where the parameter was pruned, as is where unchanged.
    Entries whose indices are unknown, and buffers that changed shape (with
    ``update_buffers=True``, e.g. BN running stats), start from the pruned
    model's current values. ``steps``, ``momentum``, ``interval`` and the
    device are kept.

    Args:
        averaged (mmengine.model.BaseAveragedModel): The averaged model,
            modified in place.
        model (nn.Module): The pruned source model (a wrapper is unwrapped).
        kept (Mapping): Kept map of the prune.

    Returns:
        int: Number of averaged entries carried over from the old copy.
    """
    kept = normalize_kept(kept)
    old_avg = dict(averaged.avg_parameters)
    device = next(iter(old_avg.values())).device if old_avg else None
    module = copy.deepcopy(unwrap_model(model)).requires_grad_(False)
    if device is not None:
        module = module.to(device)
    averaged.module = module
    averaged.avg_parameters = (module.state_dict() if averaged.update_buffers
                               else dict(module.named_parameters()))
    carried = 0
    for name, new in averaged.avg_parameters.items():
        value = _carried_average(old_avg.get(name), new, kept.get(name, []))
        if value is not None:
            new.data.copy_(value)
            carried += 1
    return carried


def _ema_hooks(runner):
    """The runner's ``EMAHook``s that already built their averaged model."""
    from mmengine.hooks import EMAHook
    return [h for h in getattr(runner, 'hooks', [])
            if isinstance(h, EMAHook) and hasattr(h, 'ema_model')]


# --------------------------------------------------------------------------
# DDP and the runner
# --------------------------------------------------------------------------
def _shape_signature(model):
    """A small int64 tensor summarising the parameter shapes of ``model``.

    Returns:
        Tensor: ``[number of parameters, total elements, hash of every
        parameter's shape in order]``.
    """
    count, total, digest = 0, 0, 0
    for param in model.parameters():
        count, total = count + 1, total + param.numel()
        for size in (param.dim(), *param.shape):
            digest = (digest * 1000003 + size + 1) % (2 ** 61 - 1)
    return torch.tensor([count, total, digest], dtype=torch.long)


def _check_same_structure_on_all_ranks(model):
    """Raise if the ranks hold differently shaped models (no-op if single)."""
    from mmengine import dist
    if dist.get_world_size() < 2:
        return
    signatures = dist.all_gather(_shape_signature(model))
    if any(not torch.equal(s.cpu(), signatures[0].cpu())
           for s in signatures):
        raise RuntimeError(
            'rebuild_after_prune: the ranks pruned differently (parameter '
            f'shape signatures {[s.tolist() for s in signatures]}). Compute '
            'the pruning decision on one rank and broadcast it (or use '
            'identical, synchronised statistics) before pruning.')


def _rewrap_ddp(runner, module):
    """Wrap the pruned module again with the runner's ``wrap_model``."""
    from torch.nn.parallel import DistributedDataParallel
    if not isinstance(runner.model, DistributedDataParallel):
        raise NotImplementedError(
            f'rebuild_after_prune: model wrapper {type(runner.model).__name__}'
            ' is not supported after a structural prune; only (MM)'
            'DistributedDataParallel is re-wrapped.')
    _check_same_structure_on_all_ranks(module)
    cfg = getattr(runner, 'cfg', None)
    wrapper_cfg = cfg.get('model_wrapper_cfg') if cfg is not None else None
    runner.model = runner.wrap_model(copy.deepcopy(wrapper_cfg), module)
    return unwrap_model(runner.model)


def _clear_grads(model, names):
    """Set ``.grad`` to None for the named parameters."""
    for name, param in model.named_parameters():
        if name in names:
            param.grad = None


def rebuild_after_prune(runner, old_params_by_name, kept, reset_state=False,
                        clear_grads=True):
    """Bring an mmengine runner in line with its freshly pruned model.

    Call on every rank, after every rank pruned ``runner.model`` identically
    (e.g. from an ``after_train_iter`` hook). In order:

    1. DDP: if ``runner.model`` is a (MM)DistributedDataParallel, the pruned
       ``runner.model.module`` is wrapped again with
       ``runner.wrap_model(cfg.model_wrapper_cfg, module)`` (the old reducer
       is tied to the old parameters); the ranks' parameter shapes are
       compared first.
    2. ``.grad`` of the pruned parameters is cleared (``clear_grads``).
    3. The optimizer(s) of ``runner.optim_wrapper`` (``OptimWrapper`` or
       ``OptimWrapperDict``) are synced with :func:`sync_optimizer`; the
       wrapper and the param schedulers are kept, so the LR schedule goes on.
    4. Every ``EMAHook``'s ``ema_model`` is rebuilt with
       :func:`rebuild_averaged_model` and its ``src_model`` re-pointed.

    Args:
        runner (mmengine.runner.Runner): The runner (optimizer built).
        old_params_by_name (Mapping[str, nn.Parameter]): Parameters of the
            bare model before pruning (``PruningRecorder.old_params``).
        kept (Mapping): Kept map (``PruningRecorder.kept``).
        reset_state (bool): Drop instead of slice the optimizer state of
            pruned parameters. Default False.
        clear_grads (bool): Clear gradients of pruned parameters. Default
            True (after ``OptimWrapper.update_params`` they are None anyway;
            with gradient accumulation a partial sum is dropped).

    Returns:
        dict: ``{'optimizer': sync_optimizer stats, 'ema': entries carried
        per EMA hook, 'rewrapped': bool}``.
    """
    from mmengine.model import is_model_wrapper
    module = unwrap_model(runner.model)
    rewrapped = is_model_wrapper(runner.model)
    if rewrapped:
        module = _rewrap_ddp(runner, module)
    kept = normalize_kept(kept)
    if clear_grads:
        _clear_grads(module, set(kept))
    stats = sync_optimizer(runner.optim_wrapper, module, old_params_by_name,
                           kept, reset_state=reset_state)
    ema = []
    for hook in _ema_hooks(runner):
        hook.src_model = module
        ema.append(rebuild_averaged_model(hook.ema_model, module, kept))
    return dict(optimizer=stats, ema=ema, rewrapped=rewrapped)
