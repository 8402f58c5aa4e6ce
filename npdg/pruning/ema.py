"""Rebuild an EMA (averaged) model after a prune, carrying the averages over."""
import copy

from ..analysis.inference_path import unwrap_model
from .kept import apply_kept, kept_shape, normalize_kept


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
