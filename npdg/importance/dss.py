"""DSS: domain-shift similarity of feature maps (Sun et al., 2023)."""
import torch.nn.functional as F

from .base import Importance, register_importance
from .taylor import _require

SHIFTED = ('styled', 'target')


def _similarity(clean, shifted):
    """Per-channel cosine similarity of two (C, h, w) mean maps."""
    return F.cosine_similarity(clean.flatten(1), shifted.flatten(1), dim=1, eps=1e-12)


@register_importance
class DSSImportance(Importance):
    """Cosine similarity of a unit's dataset-mean map on source vs shifted images.

    A unit whose mean response keeps its spatial pattern when the domain
    shifts is kept; the least similar go. Channels: the BN output maps of
    the group, averaged over its BNs; heads: each head's per-token output
    norm. DSS prunes per layer with a uniform ratio, iteratively (several
    prune steps, ``schedule='geometric'`` in :class:`UnitPruningHook`).

    The shifted images are the clean source images in three fixed style
    draws (``shifted='styled'``, domain generalization). The official code
    used unlabelled images of the test domain; that is ``shifted='target'``,
    an **oracle** option (it sees the target) that needs
    ``UnitPruningHook(scoring=dict(target_dataset=...))``.

    Args:
        shifted (str): ``'styled'`` (default) or ``'target'`` (oracle).
    """

    def __init__(self, shifted='styled'):
        if shifted not in SHIFTED:
            raise ValueError(f'DSSImportance: shifted must be one of {SHIFTED}, got {shifted!r}.')
        self.shifted = shifted

    def __call__(self, units, context=None):
        context = _require(context, 'DSSImportance')
        clean = context.mean_maps('clean')
        shifted = context.mean_maps(self.shifted)
        if units.kind == 'head':
            return _similarity(clean[units.name], shifted[units.name]).double().cpu()
        return units.gather(lambda name, bn: _similarity(clean[name], shifted[name])
                            if name in clean and name in shifted else None)
