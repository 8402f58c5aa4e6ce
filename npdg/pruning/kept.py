"""The kept map: which indices of each parameter survived a prune (index algebra).

The bottom layer of the rebuild after a prune; see :mod:`npdg.pruning.optimizer_sync`
for the kept map's format. Nothing here knows about optimizers, EMA or runners.
"""
from collections.abc import Mapping

import torch

from ..analysis.inference_path import unwrap_model


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
