"""Turn feature maps of K-style batches into (B, K, C, N) position samples.

The statistics need, for every content image, the same positions in all of
its K renderings (the unary score compares the styles position by position).
These helpers pick ``N`` positions per image with a ``torch.Generator``, so a
seed fixes the choice, and reshape the batch to ``(B, K, C, N)``.
"""
from typing import Optional

import torch

_ORDERS = ('image_major', 'style_major')
_HEAD_REDUCTIONS = ('norm', 'mean')


def _check_order(order: str) -> None:
    """Raise if ``order`` is not a known batch layout.

    Args:
        order (str): ``'image_major'`` or ``'style_major'``.

    Raises:
        ValueError: For any other value.
    """
    if order not in _ORDERS:
        raise ValueError(
            f'npdg.statistics.sampling: order must be one of {_ORDERS}, '
            f'got {order!r}.')


def split_styles(feat: torch.Tensor, num_styles: int,
                 order: str = 'image_major') -> torch.Tensor:
    """Reshape a ``(B*K, ...)`` batch to ``(B, K, ...)``.

    Args:
        feat (torch.Tensor): Batch of ``B*K`` items.
        num_styles (int): ``K``, the renderings per content image (>= 1).
        order (str): Batch layout. ``'image_major'``: item ``b*K + k`` is
            image ``b`` in style ``k`` (the K styles of an image are
            adjacent). ``'style_major'``: item ``k*B + b`` (the batch is K
            stacked copies of the B images).

    Returns:
        torch.Tensor: View (or copy for ``'style_major'``) of shape
        ``(B, K, ...)``.

    Raises:
        ValueError: If the batch size is not a multiple of ``num_styles``
            or ``order`` is unknown.
    """
    _check_order(order)
    k = int(num_styles)
    total = feat.shape[0]
    if k < 1 or total % k != 0:
        raise ValueError(
            f'npdg.statistics.sampling: batch of {total} items is not B '
            f'content images x num_styles={num_styles}; pass the number of '
            f'styles each image was rendered in.')
    b = total // k
    rest = tuple(feat.shape[1:])
    if order == 'image_major':
        return feat.reshape((b, k) + rest)
    return feat.reshape((k, b) + rest).transpose(0, 1)


def sample_position_indices(num_images: int, num_total: int,
                            num_positions: Optional[int],
                            generator: Optional[torch.Generator] = None
                            ) -> Optional[torch.Tensor]:
    """Draw ``num_positions`` distinct positions of ``num_total`` per image.

    Args:
        num_images (int): ``B``.
        num_total (int): Positions available per image (``H*W`` or ``L``).
        num_positions (int, optional): Positions to keep per image. ``None``
            or ``>= num_total`` keeps all of them.
        generator (torch.Generator, optional): CPU generator that makes the
            draw reproducible; the global one when ``None``.

    Returns:
        torch.Tensor | None: ``(B, N)`` int64 CPU indices, sorted per image,
        or ``None`` when every position is kept.

    Raises:
        ValueError: If ``num_positions < 1``.
    """
    if num_positions is None or int(num_positions) >= num_total:
        return None
    n = int(num_positions)
    if n < 1:
        raise ValueError(
            f'npdg.statistics.sampling: num_positions must be >= 1 or None '
            f'(all positions), got {num_positions}.')
    keys = torch.rand(num_images, num_total, generator=generator)
    return keys.argsort(dim=1)[:, :n].sort(dim=1).values


def _subsample_flat(feat: torch.Tensor, num_styles: int,
                    num_positions: Optional[int],
                    generator: Optional[torch.Generator],
                    order: str) -> torch.Tensor:
    """Subsample a ``(B*K, C, P)`` tensor to ``(B, K, C, N)``.

    Args:
        feat (torch.Tensor): Features with flattened positions.
        num_styles (int): ``K``.
        num_positions (int, optional): ``N``; ``None`` keeps all ``P``.
        generator (torch.Generator, optional): Generator for the draw.
        order (str): Batch layout, see :func:`split_styles`.

    Returns:
        torch.Tensor: Detached ``(B, K, C, N)`` samples.
    """
    grouped = split_styles(feat.detach(), num_styles, order)
    b, k, c, p = grouped.shape
    idx = sample_position_indices(b, p, num_positions, generator)
    if idx is None:
        return grouped
    idx = idx.to(grouped.device).view(b, 1, 1, -1).expand(b, k, c, -1)
    return torch.gather(grouped, 3, idx)


def subsample_positions(feat: torch.Tensor, num_styles: int,
                        num_positions: Optional[int] = None,
                        generator: Optional[torch.Generator] = None,
                        order: str = 'image_major') -> torch.Tensor:
    """Sample positions of a conv feature map for the statistics.

    The same positions are used for all K styles of an image; different
    images get independent draws.

    Args:
        feat (torch.Tensor): ``(B*K, C, H, W)`` feature map.
        num_styles (int): ``K``, renderings per content image.
        num_positions (int, optional): ``N`` positions per image; ``None``
            (or ``>= H*W``) keeps all of them.
        generator (torch.Generator, optional): CPU generator; a seeded one
            gives the same positions every call sequence.
        order (str): Batch layout, ``'image_major'`` (default) or
            ``'style_major'``, see :func:`split_styles`.

    Returns:
        torch.Tensor: Detached ``(B, K, C, N)`` tensor.

    Raises:
        ValueError: If ``feat`` is not 4-D or its batch does not split into
            ``num_styles``.
    """
    if feat.dim() != 4:
        raise ValueError(
            f'npdg.statistics.subsample_positions expects a (B*K, C, H, W) '
            f'feature map, got shape {tuple(feat.shape)}.')
    flat = feat.reshape(feat.shape[0], feat.shape[1], -1)
    return _subsample_flat(flat, num_styles, num_positions, generator, order)


def reduce_head_features(feat: torch.Tensor,
                         reduce: str = 'norm') -> torch.Tensor:
    """Reduce each head's ``d``-dim output to one scalar per position.

    Args:
        feat (torch.Tensor): ``(B*K, C, L, d)`` per-head features
            (``C`` heads, ``L`` tokens).
        reduce (str): ``'norm'`` (L2 norm over ``d``, default) or
            ``'mean'`` (mean over ``d``).

    Returns:
        torch.Tensor: ``(B*K, C, L)``.

    Raises:
        ValueError: If ``feat`` is not 4-D or ``reduce`` is unknown.
    """
    if feat.dim() != 4:
        raise ValueError(
            f'npdg.statistics.reduce_head_features expects (B*K, heads, L, '
            f'd) features, got shape {tuple(feat.shape)}.')
    if reduce == 'norm':
        return torch.linalg.vector_norm(feat, dim=-1)
    if reduce == 'mean':
        return feat.mean(dim=-1)
    raise ValueError(
        f'npdg.statistics.reduce_head_features: reduce must be one of '
        f'{_HEAD_REDUCTIONS}, got {reduce!r}.')


def subsample_head_positions(feat: torch.Tensor, num_styles: int,
                             num_positions: Optional[int] = None,
                             generator: Optional[torch.Generator] = None,
                             reduce: str = 'norm',
                             order: str = 'image_major') -> torch.Tensor:
    """Per-head scalars per token, subsampled like :func:`subsample_positions`.

    Args:
        feat (torch.Tensor): ``(B*K, C, L, d)`` per-head outputs.
        num_styles (int): ``K``.
        num_positions (int, optional): ``N`` tokens per image; ``None`` keeps
            all ``L``.
        generator (torch.Generator, optional): CPU generator for the draw.
        reduce (str): ``'norm'`` or ``'mean'`` over ``d``, see
            :func:`reduce_head_features`.
        order (str): Batch layout, see :func:`split_styles`.

    Returns:
        torch.Tensor: Detached ``(B, K, C, N)`` tensor.
    """
    scalars = reduce_head_features(feat.detach(), reduce)
    return _subsample_flat(scalars, num_styles, num_positions, generator,
                           order)
