"""Swap pruned parameters into an optimizer by name and slice their state."""
import warnings

import torch

from .kept import apply_kept, kept_shape, normalize_kept, snapshot_params


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
