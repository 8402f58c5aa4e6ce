"""Per-layer NPDG sensitivity: normalise unary and binary scores, combine."""
import math
from typing import Dict

import torch

DEFAULT_LAMBDA = 0.4


def minmax_normalise(values: torch.Tensor) -> torch.Tensor:
    """Min-max normalise a score vector to [0, 1].

    A constant vector (range not above ``1e-12`` times its largest
    magnitude, i.e. constant up to rounding) maps to all zeros.

    Args:
        values (torch.Tensor): ``(C,)`` scores.

    Returns:
        torch.Tensor: ``(C,)`` scores in [0, 1], same dtype/device.
    """
    lo, hi = values.min(), values.max()
    span = float(hi - lo)
    scale = float(values.abs().max())
    if span <= 1e-12 * scale or span == 0.0:
        return torch.zeros_like(values)
    return ((values - lo) / span).clamp(0.0, 1.0)


def check_lambda(lam: float) -> float:
    """Validate the unary/binary mixing weight.

    Args:
        lam (float): ``lambda``.

    Returns:
        float: ``lam`` as a float.

    Raises:
        ValueError: If ``lam`` is not a finite number in [0, 1].
    """
    try:
        value = float(lam)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(
            f'npdg.statistics: lambda (lam) must be a number in [0, 1] '
            f'weighting the unary score against the binary one, got {lam!r}.')
    return value


def combine(unary_norm: torch.Tensor, binary_norm: torch.Tensor,
            lam: float = DEFAULT_LAMBDA) -> torch.Tensor:
    """Sensitivity ``w = lam * U_norm + (1 - lam) * B_norm``.

    Args:
        unary_norm (torch.Tensor): ``(C,)`` normalised unary scores.
        binary_norm (torch.Tensor): ``(C,)`` normalised binary scores.
        lam (float): Weight of the unary score in [0, 1]; 0.4 by default
            (the paper's best for ResNet-101 and MiT-B5).

    Returns:
        torch.Tensor: ``(C,)`` sensitivity in [0, 1].
    """
    lam = check_lambda(lam)
    if unary_norm.shape != binary_norm.shape:
        raise ValueError(
            f'npdg.statistics.combine: unary {tuple(unary_norm.shape)} and '
            f'binary {tuple(binary_norm.shape)} scores differ in shape.')
    return lam * unary_norm + (1.0 - lam) * binary_norm


def sensitivity_scores(acc, lam: float = DEFAULT_LAMBDA
                       ) -> Dict[str, torch.Tensor]:
    """All scores of one layer from its accumulator.

    Args:
        acc (SensitivityAccumulator): Accumulator with at least one update
            (anything with ``unary()`` and ``binary()``).
        lam (float): Unary weight in [0, 1].

    Returns:
        dict: ``unary``, ``binary`` (raw), ``unary_norm``, ``binary_norm``
        (min-max to [0, 1] within the layer) and ``w`` (combined), each a
        ``(C,)`` float64 tensor.
    """
    lam = check_lambda(lam)
    unary, binary = acc.unary(), acc.binary()
    unary_norm = minmax_normalise(unary)
    binary_norm = minmax_normalise(binary)
    return dict(unary=unary, binary=binary, unary_norm=unary_norm,
                binary_norm=binary_norm,
                w=combine(unary_norm, binary_norm, lam))
