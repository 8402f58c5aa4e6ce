"""Diagonal-Hessian (second-order) importance, as in Riaz & Smeaton (2025)."""
import torch

from .base import Importance, normalize, register_importance
from .taylor import _require
from .unit_params import per_unit_sum


@register_importance
class HessianImportance(Importance):
    """sum over the unit's parameters of theta^2 * E[g^2].

    The second-order term of the loss change when the unit's parameters are
    zeroed, with the Hessian's diagonal estimated by the mean squared
    per-sample gradient (empirical Fisher), computed by the scoring context
    over every image of its clean source batches (one backward per image).

    Args:
        normalizer (str, optional): Per-layer normaliser.
    """

    unit_kinds = ('channel', 'head', 'width')

    def __init__(self, normalizer=None):
        normalize(torch.ones(1), normalizer)
        self.normalizer = normalizer

    def __call__(self, units, context=None):
        context = _require(context, 'HessianImportance')
        params, grad_sq = context.squared_gradients()
        scores = per_unit_sum(
            units, lambda n: None if n not in grad_sq else
            params[n].detach().double().cpu() ** 2 * grad_sq[n])
        return normalize(scores, self.normalizer)
