"""Filter-norm importance (L1 / L2), the classic magnitude baselines."""
import torch

from .base import Importance, normalize, register_importance


def _head_rows(module):
    """Per-head weights of an attention module: (num_heads, -1)."""
    heads, dim = module.num_heads, module.head_dim
    parts = [getattr(module, n).weight.detach().reshape(heads, dim, -1).flatten(1)
             for n in ('q', 'k', 'v')]
    proj = module.proj.weight.detach().reshape(module.proj.out_features, heads, dim)
    parts.append(proj.permute(1, 0, 2).flatten(1))
    return torch.cat(parts, 1)


@register_importance
class MagnitudeImportance(Importance):
    """p-norm of each unit's output filters (p=1: L1, p=2: L2).

    Channels: norm of the output filter of every conv/linear whose output
    channel is in the group, averaged over those layers. Heads: norm of the
    head's q/k/v rows and output-projection columns.

    Global ranking of raw norms compares layers of very different sizes (a
    depthwise or ASPP group's filters are tiny next to a 3x3x512 conv's), so
    one layer type goes to its floor while others are untouched. With a
    ``normalizer`` each layer's scores are divided by their ``'mean'``,
    ``'max'`` or ``'sum'`` first (Torch-Pruning's normalisers), so the global
    ranking compares units *within* their layer's scale.

    Args:
        p (int): Norm order, 1 or 2.
        normalizer (str, optional): ``None`` (global raw norms), ``'mean'``,
            ``'max'`` or ``'sum'`` (per layer).
    """

    unit_kinds = ('channel', 'head', 'width')

    NORMALIZERS = (None, 'mean', 'max', 'sum')

    def __init__(self, p=1, normalizer=None):
        if p not in (1, 2):
            raise ValueError(f'MagnitudeImportance: p must be 1 or 2, got {p!r}.')
        if normalizer not in self.NORMALIZERS:
            raise ValueError(f'MagnitudeImportance: normalizer must be one of '
                             f'{self.NORMALIZERS}, got {normalizer!r}.')
        self.p = p
        self.normalizer = normalizer

    def __call__(self, units, context=None):
        if units.kind == 'head':
            scores = _head_rows(units.module).norm(p=self.p, dim=1).double().cpu()
        else:
            scores = units.gather(
                lambda name, layer: layer.weight.detach().flatten(1).norm(p=self.p, dim=1),
                layers='convs')
        return normalize(scores, self.normalizer)


@register_importance
class L1Importance(MagnitudeImportance):
    """L1 filter norm (Li et al., 2017).

    Args:
        normalizer (str, optional): Per-layer normaliser (see
            :class:`MagnitudeImportance`).
    """

    def __init__(self, normalizer=None):
        super().__init__(p=1, normalizer=normalizer)


@register_importance
class L2Importance(MagnitudeImportance):
    """L2 filter norm.

    Args:
        normalizer (str, optional): Per-layer normaliser (see
            :class:`MagnitudeImportance`).
    """

    def __init__(self, normalizer=None):
        super().__init__(p=2, normalizer=normalizer)
