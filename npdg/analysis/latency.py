"""Wall-clock latency of a callable and of a segmentor's inference path."""
import statistics
import time
from typing import Callable, Dict, Sequence

import torch
import torch.nn as nn

from .inference_path import InferencePath, check_input_shape, inference_mode, random_input, unwrap_model


def _sync(sync_cuda: bool) -> None:
    """Wait for queued CUDA work when asked and CUDA is in use.

    Args:
        sync_cuda (bool): Whether to synchronize.
    """
    if sync_cuda and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def measure_latency(fn: Callable[[], object],
                    warmup: int = 5,
                    repeats: int = 20,
                    sync_cuda: bool = True) -> Dict:
    """Time repeated calls of ``fn``.

    ``fn`` is called ``warmup`` times untimed, then ``repeats`` times, each
    call timed with :func:`time.perf_counter`. With ``sync_cuda`` (and CUDA
    initialized) the device is synchronized before starting and before
    stopping each timer, so asynchronous kernels are included.

    Args:
        fn (Callable[[], object]): The work to time, called without arguments.
        warmup (int): Untimed calls first (>= 0).
        repeats (int): Timed calls (>= 1).
        sync_cuda (bool): Synchronize CUDA around each timed call.

    Returns:
        dict: ``median``, ``min``, ``mean``, ``std`` (sample standard
        deviation, 0 for one repeat) and ``all`` (list), in seconds.

    Raises:
        ValueError: If ``warmup < 0`` or ``repeats < 1``.
    """
    if int(warmup) < 0 or int(repeats) < 1:
        raise ValueError(
            f'measure_latency needs warmup >= 0 and repeats >= 1, got '
            f'warmup={warmup}, repeats={repeats}.')
    for _ in range(int(warmup)):
        fn()
    times = []
    for _ in range(int(repeats)):
        _sync(sync_cuda)
        start = time.perf_counter()
        fn()
        _sync(sync_cuda)
        times.append(time.perf_counter() - start)
    return dict(
        median=statistics.median(times),
        min=min(times),
        mean=statistics.fmean(times),
        std=statistics.stdev(times) if len(times) > 1 else 0.0,
        all=times)


def segmentor_latency(model: nn.Module,
                      input_shape: Sequence[int] = (3, 512, 1024),
                      warmup: int = 5,
                      repeats: int = 20,
                      batch_size: int = 1,
                      sync_cuda: bool = True) -> Dict:
    """Time a segmentor's inference path (the same one the FLOPs count).

    Runs backbone (+ neck) + decode head (``EncoderDecoder._forward``; no
    auxiliary heads, no sliding window) on a fixed random input on the
    model's device, in eval mode under ``torch.no_grad()``, unwrapping
    DDP-style wrappers and restoring every module's mode afterwards.

    Args:
        model (nn.Module): An mmseg segmentor or any module taking one image
            tensor.
        input_shape (Sequence[int]): (C, H, W).
        warmup (int): Untimed forward passes first.
        repeats (int): Timed forward passes.
        batch_size (int): Images per forward pass.
        sync_cuda (bool): Synchronize CUDA around each timed pass.

    Returns:
        dict: :func:`measure_latency`'s statistics (seconds per forward pass)
        plus ``input_shape``, ``batch_size`` and ``device`` (str).
    """
    shape = check_input_shape(input_shape)
    model = unwrap_model(model)
    with inference_mode(model):
        inputs = random_input(model, shape, batch_size=batch_size)
        path = InferencePath(model)
        result = measure_latency(
            lambda: path(inputs), warmup=warmup, repeats=repeats,
            sync_cuda=sync_cuda)
    result.update(
        input_shape=shape, batch_size=batch_size, device=str(inputs.device))
    return result
