"""First-order Taylor importance (Molchanov et al., 2019), channels and heads."""
import torch

from .base import Importance, normalize, register_importance
from .unit_params import per_unit_sum


def _require(context, name):
    if context is None:
        raise ValueError(f'{name} needs data: call it with a ScoringContext '
                         '(UnitPruningHook builds one at every prune step).')
    return context


@register_importance
class TaylorImportance(Importance):
    """|sum over the unit's parameters of theta * dL/dtheta|, averaged over batches.

    The first-order estimate of the loss change when the unit is removed
    (its output-side parameters zeroed; see :mod:`npdg.importance.unit_params`).
    Gradients come from the scoring context: the segmentation loss on clean
    source batches (``num_domains=0``) or its mean over the clean images and
    ``num_domains`` fixed style draws of them.

    Args:
        num_domains (int): Style-drawn pseudo-domains besides the clean one.
        normalizer (str, optional): Per-layer normaliser (``None``: global
            raw scores; ``'mean'``, ``'max'``, ``'sum'``).
    """

    unit_kinds = ('channel', 'head', 'width')

    beta = 0.0

    def __init__(self, num_domains=0, normalizer=None):
        if int(num_domains) != num_domains or num_domains < 0:
            raise ValueError(f'{type(self).__name__}: num_domains must be an integer >= 0, '
                             f'got {num_domains!r}.')
        self.num_domains = int(num_domains)
        self.normalizer = normalizer
        normalize(torch.ones(1), normalizer)  # unknown normalisers fail at build time

    def __call__(self, units, context=None):
        context = _require(context, type(self).__name__)
        params, per_batch = context.gradients(self.num_domains, self.beta)
        scores = torch.zeros(units.num_units, dtype=torch.float64)
        for grads in per_batch:
            scores += per_unit_sum(
                units, lambda n: None if n not in grads else params[n].detach().cpu() * grads[n]
            ).abs()
        return normalize(scores / max(1, len(per_batch)), self.normalizer)
