"""|gamma|: BN scale of channels, gate of heads (network slimming, NPDG)."""

from .base import Importance, register_importance


@register_importance
class BNScaleImportance(Importance):
    """Importance = |gamma|, the unit's learnt scale.

    Channels: |BN weight| reduced over the BNs a coupled group contains. The
    default ``'max'`` calls a coupled channel (e.g. a residual channel shared
    by several blocks) unimportant only when *every* BN that carries it has a
    small scale, which is what removing it requires. Heads: |head_gate|.
    After sensitivity-reweighted sparse training the domain-sensitive and
    redundant units have small |gamma|.

    Args:
        reduction (str): ``'max'`` (default) or ``'mean'`` over coupled BNs.
    """

    uses_threshold = True

    def __init__(self, reduction='max'):
        if reduction not in ('max', 'mean'):
            raise ValueError(f"BNScaleImportance: reduction must be 'max' or 'mean', "
                             f'got {reduction!r}.')
        self.reduction = reduction

    def __call__(self, units, context=None):
        if units.kind == 'head':
            return units.module.head_gate.detach().abs().double().cpu()
        return units.gather(lambda name, bn: bn.weight.abs(), reduction=self.reduction)
