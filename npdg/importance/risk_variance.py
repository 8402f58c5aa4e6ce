"""Domain-risk-variance importance (Cai et al., 2022)."""
from .base import register_importance
from .taylor import TaylorImportance


@register_importance
class DomainRiskVarianceImportance(TaylorImportance):
    """Taylor importance of ``J = mean_d R_d + beta * Var_d R_d`` over pseudo-domains.

    The pseudo-domains are the clean source batch and ``num_domains`` fixed
    style draws of the same images (the run's style perturbation; one style
    per domain); ``R_d`` is the segmentation loss in domain d. A unit whose
    removal would raise the *spread* of the risks across domains, not only
    their mean, is important. ``beta = 0`` is exactly
    :class:`TaylorImportance` with the same ``num_domains``.

    Args:
        beta (float): Weight of the variance term (paper default 1).
        num_domains (int): Style-drawn pseudo-domains besides the clean one.
        normalizer (str, optional): Per-layer normaliser.
    """

    def __init__(self, beta=1.0, num_domains=3, normalizer=None):
        if not beta >= 0:
            raise ValueError(f'DomainRiskVarianceImportance: beta must be >= 0, got {beta!r}.')
        if int(num_domains) < 1:
            raise ValueError('DomainRiskVarianceImportance: needs num_domains >= 1 (a variance '
                             f'over one domain is 0), got {num_domains!r}.')
        super().__init__(num_domains=num_domains, normalizer=normalizer)
        self.beta = float(beta)
