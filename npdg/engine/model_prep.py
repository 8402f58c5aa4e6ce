"""Make a runner's model observable/prunable before training starts."""
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from npdg.analysis.inference_path import unwrap_model
from npdg.models import convert_mit_attention, is_converted


def needs_attention_conversion(model):
    """Whether ``model`` still has mmseg's packed ``EfficientMultiheadAttention``.

    Args:
        model (nn.Module): Bare or wrapped model.

    Returns:
        bool: True when some attention is not yet per-head.
    """
    from mmseg.models.backbones.mit import EfficientMultiheadAttention
    model = unwrap_model(model)
    return any(isinstance(m, EfficientMultiheadAttention) for m in model.modules())


def rebuild_optimization(runner):
    """Rebuild the optimizer wrapper, param schedulers and DDP wrapper from config.

    Only valid before the first training step (nothing to carry over).

    Args:
        runner (Runner): The runner, in ``before_run``.
    """
    if is_model_wrapper(runner.model):
        runner.model = runner.wrap_model(runner.cfg.get('model_wrapper_cfg'),
                                         runner.model.module)
    if getattr(runner, '_train_loop', None) is None or isinstance(runner._train_loop, dict):
        return
    from mmengine.optim import OptimWrapper
    if isinstance(runner.optim_wrapper, OptimWrapper) or hasattr(runner.optim_wrapper, 'optimizer'):
        runner.optim_wrapper = runner.build_optim_wrapper(runner.cfg.optim_wrapper)
        if runner.cfg.get('param_scheduler') is not None:
            runner.param_schedulers = runner.build_param_scheduler(runner.cfg.param_scheduler)


def ensure_per_head_attention(runner):
    """Swap packed attention for per-head attention once, before training.

    SegFormer's ``EfficientMultiheadAttention`` hides its heads inside a fused
    ``nn.MultiheadAttention``; the exactly equivalent per-head module lets
    npdg observe, gate and remove heads. The optimizer, schedulers and DDP
    wrapper built from the old parameters are rebuilt (no step has run yet).

    Args:
        runner (Runner): The runner, in ``before_run``.

    Returns:
        int: Number of attention modules converted (0 if none or done).
    """
    model = unwrap_model(runner.model)
    if not needs_attention_conversion(model):
        return 0
    count = convert_mit_attention(model)
    print_log(f'[npdg] converted {count} attention modules to per-head attention '
              '(exactly equivalent; heads can be observed, gated and removed) and rebuilt '
              "the optimizer, schedulers and DDP wrapper for it; runner_type='NpdgRunner' "
              'converts when it builds the model instead', logger='current')
    rebuild_optimization(runner)
    return count


__all__ = ['ensure_per_head_attention', 'needs_attention_conversion', 'is_converted']
