"""The inference path of a segmentor, shared by the FLOPs counter and the timer.

Both :mod:`npdg.analysis.complexity` and :mod:`npdg.analysis.latency` measure
the same computation: backbone (+ neck) + decode head, i.e.
``EncoderDecoder._forward``, without auxiliary heads, test-time sliding or
resizing, on one random input tensor, in eval mode and under
``torch.no_grad()``.
"""
from contextlib import contextmanager
from typing import Iterator, Sequence, Tuple

import torch
import torch.nn as nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the bare model inside its wrappers (the one unwrap of npdg).

    Unwraps DP/DDP, mmengine's model wrappers (``MMDistributedDataParallel``)
    and test-time-augmentation models (``SegTTAModel``: ``tools/test.py
    --tta``), however nested.

    Args:
        model (nn.Module): A model, possibly wrapped.

    Returns:
        nn.Module: The bare model.
    """
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(
            model, (nn.DataParallel, nn.parallel.DistributedDataParallel, BaseTTAModel)):
        model = model.module
    return model


def is_segmentor(model: nn.Module) -> bool:
    """Return whether ``model`` has mmseg's ``EncoderDecoder`` inference path.

    Args:
        model (nn.Module): An unwrapped model.

    Returns:
        bool: True when the model has ``_forward``, ``extract_feat`` and a
        ``decode_head``.
    """
    return all(
        hasattr(model, name)
        for name in ('_forward', 'extract_feat', 'decode_head'))


class InferencePath(nn.Module):
    """Module whose forward is the segmentor's inference path.

    For an mmseg segmentor this is ``model._forward(inputs)`` (backbone, neck,
    decode head; no auxiliary heads, no sliding window). Any other module is
    called as ``model(inputs)``.

    Args:
        model (nn.Module): An unwrapped model (registered as ``self.model``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor):
        """Run the inference path.

        Args:
            inputs (Tensor): Images of shape (N, C, H, W).

        Returns:
            Tensor | tuple: The decode head's raw output (logits at the
            decode head's resolution).
        """
        if is_segmentor(self.model):
            return self.model._forward(inputs)
        return self.model(inputs)


def check_input_shape(input_shape: Sequence[int]) -> Tuple[int, int, int]:
    """Validate a (C, H, W) input shape.

    Args:
        input_shape (Sequence[int]): Channels, height, width.

    Returns:
        tuple[int, int, int]: The shape as a tuple of ints.

    Raises:
        ValueError: If it is not three positive integers.
    """
    shape = tuple(input_shape) if isinstance(input_shape,
                                             (list, tuple)) else ()
    if len(shape) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0
            for v in shape):
        raise ValueError(
            f'input_shape must be three positive ints (C, H, W), e.g. '
            f'(3, 512, 1024); got {input_shape!r}.')
    return shape


def random_input(model: nn.Module,
                 input_shape: Sequence[int],
                 batch_size: int = 1) -> torch.Tensor:
    """Make a random input on the model's device and in its float dtype.

    Args:
        model (nn.Module): The model the input is for.
        input_shape (Sequence[int]): (C, H, W).
        batch_size (int): Leading batch dimension.

    Returns:
        Tensor: Normal random tensor of shape (batch_size, C, H, W).
    """
    shape = check_input_shape(input_shape)
    device, dtype = torch.device('cpu'), torch.float32
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            device, dtype = tensor.device, tensor.dtype
            break
    return torch.randn(batch_size, *shape, device=device, dtype=dtype)


@contextmanager
def inference_mode(model: nn.Module, grad: bool = False) -> Iterator[nn.Module]:
    """Put a model in eval mode under ``torch.no_grad()``; restore it after.

    Every submodule's own ``training`` flag is restored, so modules that
    were deliberately kept in eval mode (frozen norms) stay that way.

    Args:
        model (nn.Module): The (unwrapped) model.
        grad (bool): Keep autograd on instead (eval-mode passes that need
            gradients, e.g. scoring criteria).

    Yields:
        nn.Module: The same model, in eval mode.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.set_grad_enabled(grad):
            yield model
    finally:
        for module, training in flags:
            module.training = training
