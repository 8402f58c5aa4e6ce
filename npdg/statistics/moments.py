"""Unary and binary scores from streaming sums (no data, only the sums).

Conventions (documented here once):

* unary: population variance (``unbiased=False``, divide by K) across the
  K styles at each (image, position), averaged over images and positions;
* binary: Pearson correlation over all (image, style, position) samples
  from the count, the per-unit sums and the cross-product matrix;
  ``B_i = mean_{j != i} |corr(i, j)|``;
* a unit whose variance is zero (``var <= ZERO_VAR_RTOL * E[x^2]``, i.e.
  zero up to float64 rounding of the sums) has correlation 0 with every
  other unit, never NaN; a layer with a single unit has binary score 0.
"""
import torch

ZERO_VAR_RTOL = 1e-10


def _require_samples(count: torch.Tensor, what: str) -> float:
    """Return ``count`` as a float, raising when it is zero.

    Args:
        count (torch.Tensor): Scalar sample count.
        what (str): Name of the score, for the message.

    Returns:
        float: The count.

    Raises:
        RuntimeError: If no sample was accumulated.
    """
    n = float(count)
    if n <= 0:
        raise RuntimeError(
            f'npdg.statistics: cannot compute the {what} score without '
            f'samples; call update() with (B, K, C, N) activations first.')
    return n


def unary_from_sums(var_sum: torch.Tensor,
                    var_count: torch.Tensor) -> torch.Tensor:
    """Mean across-style variance per unit.

    Args:
        var_sum (torch.Tensor): ``(C,)`` sum over (image, position) of the
            population variance across the K styles.
        var_count (torch.Tensor): Scalar number of (image, position) pairs.

    Returns:
        torch.Tensor: ``(C,)`` unary scores ``U``.
    """
    return var_sum / _require_samples(var_count, 'unary')


def covariance_from_sums(count: torch.Tensor, total: torch.Tensor,
                         cross: torch.Tensor) -> torch.Tensor:
    """Population covariance matrix from raw moment sums.

    Args:
        count (torch.Tensor): Scalar number of samples ``n``.
        total (torch.Tensor): ``(C,)`` sum of the samples.
        cross (torch.Tensor): ``(C, C)`` sum of outer products.

    Returns:
        torch.Tensor: ``(C, C)`` covariance ``cross/n - mean mean^T``.
    """
    n = _require_samples(count, 'binary')
    mean = total / n
    return cross / n - torch.outer(mean, mean)


def correlation_from_sums(count: torch.Tensor, total: torch.Tensor,
                          cross: torch.Tensor) -> torch.Tensor:
    """Pearson correlation matrix from raw moment sums.

    Units with zero variance (see the module docstring) get correlation 0
    with every unit, including themselves. Values are clamped to [-1, 1].

    Args:
        count (torch.Tensor): Scalar number of samples ``n``.
        total (torch.Tensor): ``(C,)`` sum of the samples.
        cross (torch.Tensor): ``(C, C)`` sum of outer products.

    Returns:
        torch.Tensor: ``(C, C)`` correlation matrix, never NaN.
    """
    cov = covariance_from_sums(count, total, cross)
    var = torch.diagonal(cov).clamp(min=0)
    second = torch.diagonal(cross) / float(count)
    live = var > ZERO_VAR_RTOL * second
    std = torch.where(live, var.sqrt(), torch.ones_like(var))
    corr = cov / torch.outer(std, std)
    corr = corr * torch.outer(live, live).to(corr.dtype)
    return corr.clamp(-1.0, 1.0)


def binary_from_correlation(corr: torch.Tensor) -> torch.Tensor:
    """Mean absolute correlation of each unit with the other units.

    Args:
        corr (torch.Tensor): ``(C, C)`` correlation matrix.

    Returns:
        torch.Tensor: ``(C,)`` binary scores ``B``; zeros when ``C == 1``.
    """
    c = corr.shape[0]
    if c < 2:
        return torch.zeros(c, dtype=corr.dtype, device=corr.device)
    off = corr.abs() * (1 - torch.eye(c, dtype=corr.dtype,
                                       device=corr.device))
    return off.sum(dim=1) / (c - 1)
