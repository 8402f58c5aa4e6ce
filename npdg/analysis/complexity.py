"""FLOPs and parameter count of a segmentor's inference path.

FLOPs come from :class:`mmengine.analysis.FlopAnalyzer` (fvcore's counter):
one multiply-accumulate counts as one FLOP, convolution and linear bias adds
are not counted, and ops without a handle (``scaled_dot_product_attention``,
``softmax``, elementwise adds, pooling, ...) are skipped. The skipped op
names are reported so that undercounted (transformer) numbers are labelled.
"""
from collections import OrderedDict
from typing import Dict, Sequence

import torch.nn as nn

from .inference_path import InferencePath, check_input_shape, inference_mode, random_input, unwrap_model

#: Submodules of an mmseg segmentor that run at inference.
INFERENCE_PARTS = ('backbone', 'neck', 'decode_head')


def count_params(modules: Sequence[nn.Module]) -> int:
    """Count the parameters of some modules, each shared tensor once.

    Args:
        modules (Sequence[nn.Module]): Modules whose parameters to count.

    Returns:
        int: Number of scalar parameters.
    """
    seen, total = set(), 0
    for module in modules:
        for param in module.parameters():
            if id(param) not in seen:
                seen.add(id(param))
                total += param.numel()
    return total


def inference_params(model: nn.Module) -> int:
    """Count the parameters used at inference (no auxiliary heads).

    For an mmseg segmentor these are the parameters of ``backbone``,
    ``neck`` (if any) and ``decode_head``; for any other module, all of them.

    Args:
        model (nn.Module): The model, possibly wrapped.

    Returns:
        int: Number of scalar parameters used at inference.
    """
    model = unwrap_model(model)
    if not hasattr(model, 'decode_head'):
        return count_params([model])
    parts = [getattr(model, name, None) for name in INFERENCE_PARTS]
    return count_params(
        [part for part in parts if isinstance(part, nn.Module)])


def count_flops(model: nn.Module, input_shape: Sequence[int]):
    """Run mmengine's FLOP counter over the inference path.

    Args:
        model (nn.Module): The unwrapped model (in eval mode).
        input_shape (Sequence[int]): (C, H, W) of the random input.

    Returns:
        tuple[int, dict]: Total FLOPs (multiply-accumulates) and the
        ``{op name: occurrences}`` of ops the counter skipped.
    """
    from mmengine.analysis import FlopAnalyzer
    inputs = (random_input(model, input_shape), )
    analyzer = FlopAnalyzer(InferencePath(model), inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    total = analyzer.total()
    skipped = OrderedDict(sorted(analyzer.unsupported_ops().items()))
    return total, skipped


def segmentor_complexity(model: nn.Module,
                         input_shape: Sequence[int] = (3, 512, 1024)
                         ) -> Dict:
    """Measure FLOPs and parameters of a segmentor's inference path.

    The path is backbone (+ neck) + ``decode_head.forward`` (mmseg's
    ``EncoderDecoder._forward``) on one random image of ``input_shape`` on
    the model's device, in eval mode under ``torch.no_grad()``. Wrappers
    (DDP, ``MMDistributedDataParallel``) are unwrapped and every module's
    train/eval mode is restored afterwards.

    Args:
        model (nn.Module): An mmseg segmentor, or any module taking one
            image tensor.
        input_shape (Sequence[int]): (C, H, W), batch size 1.

    Returns:
        dict: ``flops`` (float, multiply-accumulates as mmengine reports),
        ``gflops`` (``flops / 1e9``), ``params`` (inference parameters:
        backbone + neck + decode head), ``params_total`` (all parameters,
        auxiliary heads included), ``input_shape`` (tuple), ``skipped_ops``
        (sorted op names the counter did not count) and
        ``skipped_op_counts`` (``{op: occurrences}``).
    """
    shape = check_input_shape(input_shape)
    model = unwrap_model(model)
    from npdg.models.per_head_attention import set_attn_impl
    # Per-head attention counts its explicit matmuls in 'math' mode (the fused
    # kernel is skipped by the counter, like mmseg's original attention's).
    previous = set_attn_impl(model, 'math')
    try:
        with inference_mode(model):
            flops, skipped = count_flops(model, shape)
    finally:
        for name, impl in previous.items():
            model.get_submodule(name).attn_impl = impl
    return dict(
        flops=float(flops),
        gflops=float(flops) / 1e9,
        params=inference_params(model),
        params_total=count_params([model]),
        input_shape=shape,
        skipped_ops=list(skipped),
        skipped_op_counts=dict(skipped))


def format_input_shape(input_shape: Sequence[int]) -> str:
    """Format an input shape as ``'3x512x1024'``.

    Args:
        input_shape (Sequence[int]): (C, H, W).

    Returns:
        str: The dimensions joined by ``x``.
    """
    return 'x'.join(str(int(v)) for v in input_shape)


def format_complexity(info: Dict) -> str:
    """Format :func:`segmentor_complexity`'s result as one line.

    Args:
        info (dict): The result of :func:`segmentor_complexity`.

    Returns:
        str: E.g. ``'GFLOPs 12.34 | params 1.23 M | input 3x512x1024
        (counter skips: add_, max_pool2d)'``.
    """
    line = (f"GFLOPs {info['gflops']:.2f} | "
            f"params {info['params'] / 1e6:.2f} M | "
            f"input {format_input_shape(info['input_shape'])}")
    skipped = [op.split('::')[-1] for op in info.get('skipped_ops', [])]
    if skipped:
        line += f" (counter skips: {', '.join(skipped)})"
    return line
