"""Rebuild a running mmengine Runner after a prune: optimizer, EMA, DDP (the top layer)."""
import copy

import torch

from npdg.analysis.inference_path import unwrap_model
from npdg.pruning.ema import _ema_hooks, rebuild_averaged_model
from npdg.pruning.kept import normalize_kept
from npdg.pruning.optim_state import sync_optimizer


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
