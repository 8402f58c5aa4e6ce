"""|gamma|: BN scale of channels, gate of heads (network slimming, NPDG)."""
import torch

from .base import Importance, register_importance


@register_importance
class BNScaleImportance(Importance):
    """Importance = |gamma|, the unit's learnt scale.

    Channels: |BN weight|, averaged over the BNs a coupled group contains.
    Heads: |head_gate|. After sensitivity-reweighted sparse training the
    domain-sensitive and redundant units have small |gamma|.
    """

    uses_threshold = True

    def __call__(self, units):
        if units.kind == 'head':
            return units.module.head_gate.detach().abs().double().cpu()
        return units.gather(lambda name, bn: bn.weight.abs())
