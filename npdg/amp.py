"""Mixed precision for npdg runs: a CPU bfloat16 wrapper and what the hooks share.

``tools/train.py --amp`` calls :func:`enable_amp`: on a CUDA machine the
config's ``OptimWrapper`` becomes mmengine's ``AmpOptimWrapper`` (float16
autocast, dynamic ``GradScaler``); without CUDA (mmengine's wrapper asserts
CUDA) it becomes :class:`CPUAmpOptimWrapper` (bfloat16 autocast on the CPU, no
loss scaler: bfloat16 has float32's exponent range, so gradients neither
underflow nor overflow for want of a scale).

The npdg hooks run their own forward passes outside mmengine's
``train_step``; :func:`training_autocast` gives them the autocast of the
training step, and :func:`loss_scale` the loss scale (1.0 without a scaler).
"""
import contextlib

import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import OPTIM_WRAPPERS

CPU_AMP_DTYPE = torch.bfloat16


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under CPU bfloat16 autocast.

    mmengine's ``AmpOptimWrapper`` asserts a GPU (or NPU/MLU/MUSA) at
    construction. This wrapper is its CPU counterpart: the loss is computed
    under ``torch.autocast('cpu', dtype=torch.bfloat16)`` (mmengine's
    ``BaseModel.train_step`` enters :meth:`optim_context`), parameters,
    gradients and the optimizer state stay float32, and there is no loss
    scaler (``state_dict`` is the optimizer's). Gradient accumulation and
    clipping work as in ``OptimWrapper``.

    Args:
        dtype (str | torch.dtype): Autocast dtype; only ``'bfloat16'``.
        loss_scale (None): Not supported (bfloat16 needs no scaling); given
            for a clear error when a float16 GPU config is run on the CPU.
        **kwargs: Passed to ``OptimWrapper`` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).

    Raises:
        ValueError: For another dtype or a loss scale.
    """

    def __init__(self, dtype='bfloat16', loss_scale=None, **kwargs):
        if dtype not in ('bfloat16', CPU_AMP_DTYPE):
            raise ValueError(
                f'optim_wrapper.dtype={dtype!r}: CPU autocast here runs in bfloat16 only '
                "(float16 needs a GPU and a loss scaler). Set optim_wrapper.dtype='bfloat16' "
                'or remove the key.')
        if loss_scale is not None:
            raise ValueError(
                f'optim_wrapper.loss_scale={loss_scale!r}: CPUAmpOptimWrapper (bfloat16) uses '
                'no loss scaler. Remove optim_wrapper.loss_scale, or train on a GPU with '
                "type='AmpOptimWrapper'.")
        super().__init__(**kwargs)
        self.cast_dtype = CPU_AMP_DTYPE

    @contextlib.contextmanager
    def optim_context(self, model):
        """``OptimWrapper``'s context (no_sync under accumulation) plus bfloat16 autocast.

        Args:
            model (nn.Module): The training model.

        Yields:
            None
        """
        with super().optim_context(model), \
                torch.autocast(device_type='cpu', dtype=self.cast_dtype):
            yield


def enable_amp(cfg, cuda=None):
    """Switch ``cfg.optim_wrapper`` to mixed precision (what ``--amp`` does).

    Args:
        cfg (mmengine.Config): The training config (changed in place).
        cuda (bool, optional): Whether to train on CUDA; default
            ``torch.cuda.is_available()``.

    Returns:
        str: The wrapper type now in the config.

    Raises:
        ValueError: If the config's wrapper is not a plain ``OptimWrapper``
            (or already the AMP wrapper of this device), or asks for a CUDA
            AMP wrapper on a machine without CUDA.
    """
    cuda = torch.cuda.is_available() if cuda is None else bool(cuda)
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    target = 'AmpOptimWrapper' if cuda else 'CPUAmpOptimWrapper'
    if kind == target:
        return kind
    if kind == 'AmpOptimWrapper' and not cuda:
        raise ValueError(
            "optim_wrapper.type='AmpOptimWrapper' needs CUDA (mmengine asserts a GPU); on the "
            "CPU use type='OptimWrapper' with --amp (bfloat16 autocast, CPUAmpOptimWrapper).")
    if kind != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type == "OptimWrapper", got {kind!r}; '
                         'set optim_wrapper.type=OptimWrapper or drop --amp.')
    wrapper.type = target
    if cuda:
        wrapper.setdefault('loss_scale', 'dynamic')
    return target


def _single_wrapper(runner):
    """The runner's built ``OptimWrapper`` (None for a cfg dict or an OptimWrapperDict)."""
    wrapper = getattr(runner, 'optim_wrapper', None)
    if isinstance(wrapper, OptimWrapper) and not isinstance(wrapper, OptimWrapperDict):
        return wrapper
    return None


def training_autocast(runner, model):
    """The autocast context of the runner's training step, for a hook's own forward.

    It is the optimizer wrapper's ``optim_context`` entered on ``model`` (the
    bare model, so no DDP ``no_sync``): under ``AmpOptimWrapper`` or
    :class:`CPUAmpOptimWrapper` the forward runs in the same precision as
    training; under a plain ``OptimWrapper`` nothing changes.

    Args:
        runner (Runner): The runner (its optimizer wrapper built).
        model (nn.Module): The bare segmentor the hook runs.

    Returns:
        contextlib.AbstractContextManager: The context.
    """
    wrapper = _single_wrapper(runner)
    if wrapper is None:
        return contextlib.nullcontext()
    return wrapper.optim_context(model)


def loss_scale(runner):
    """The scale the training step multiplies the loss by before backward.

    Args:
        runner (Runner): The runner.

    Returns:
        float: ``loss_scaler.get_scale()`` of an ``AmpOptimWrapper`` (1.0 when
        its scaler is disabled), else 1.0.
    """
    scaler = getattr(getattr(runner, 'optim_wrapper', None), 'loss_scaler', None)
    return float(scaler.get_scale()) if scaler is not None else 1.0


__all__ = ['CPUAmpOptimWrapper', 'enable_amp', 'training_autocast', 'loss_scale']
