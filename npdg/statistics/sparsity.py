"""Sparsity weights omega from sensitivities (spec 1c)."""
import math
from typing import Dict, Mapping

import torch

SCOPES = ('global', 'layer')


def _as_vector(name: str, w) -> torch.Tensor:
    """Return ``w`` as a non-empty 1-D floating tensor.

    Args:
        name (str): Layer name, for messages.
        w (array-like): Sensitivities of the layer.

    Returns:
        torch.Tensor: 1-D tensor.

    Raises:
        ValueError: If ``w`` is empty or not 1-D.
    """
    t = torch.as_tensor(w)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(
            f'sparsity_weights: w for layer {name!r} must be a non-empty 1-D '
            f'vector of per-unit sensitivities, got shape {tuple(t.shape)}.')
    return t


def _check_mean(mean: float, where: str) -> float:
    """Raise if the normaliser of omega is not positive and finite.

    Args:
        mean (float): ``mean(eps + w)``.
        where (str): Scope description, for the message.

    Returns:
        float: ``mean``.
    """
    if not (math.isfinite(mean) and mean > 0):
        raise ValueError(
            f'sparsity_weights: mean(eps + w) over {where} is {mean}; w must '
            f'be finite sensitivities in [0, 1] and eps > 0.')
    return mean


def sparsity_weights(w_by_layer: Mapping[str, torch.Tensor],
                     eps: float = 0.1,
                     scope: str = 'global') -> Dict[str, torch.Tensor]:
    """Per-unit sparsity weights ``omega_i = (eps + w_i) / mean(eps + w)``.

    Args:
        w_by_layer (Mapping[str, Tensor]): Layer name -> ``(C,)``
            sensitivities ``w`` (e.g. ``sensitivity_scores(...)['w']``).
        eps (float): Offset that keeps every unit's weight positive
            (spec: 0.1); must be > 0.
        scope (str): Over which units the mean is taken. ``'global'``
            (default): all units of all layers (each unit counts once), so
            omega has mean 1 over the whole network and layers whose units
            are more sensitive are penalised more overall. ``'layer'``:
            within each layer, so omega has mean 1 per layer and only
            redistributes the penalty among a layer's units.

    Returns:
        dict: Layer name -> ``(C,)`` omega, same dtype/device as its ``w``.

    Raises:
        ValueError: For an unknown scope, ``eps <= 0`` or bad ``w``.
    """
    if scope not in SCOPES:
        raise ValueError(
            f'sparsity_weights: scope must be one of {SCOPES}, got {scope!r}.')
    if not (math.isfinite(float(eps)) and float(eps) > 0):
        raise ValueError(f'sparsity_weights: eps must be > 0, got {eps!r}.')
    shifted = {name: _as_vector(name, w) + float(eps)
               for name, w in w_by_layer.items()}
    if scope == 'layer':
        return {name: v / _check_mean(float(v.mean()), f'layer {name!r}')
                for name, v in shifted.items()}
    if not shifted:
        return {}
    total = sum(float(v.sum()) for v in shifted.values())
    count = sum(v.numel() for v in shifted.values())
    mean = _check_mean(total / count, 'all layers')
    return {name: v / mean for name, v in shifted.items()}
