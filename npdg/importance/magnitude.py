"""Filter-norm importance (L1 / L2), the classic magnitude baselines."""
import torch

from .base import Importance, register_importance


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

    Args:
        p (int): Norm order, 1 or 2.
    """

    def __init__(self, p=1):
        if p not in (1, 2):
            raise ValueError(f'MagnitudeImportance: p must be 1 or 2, got {p!r}.')
        self.p = p

    def __call__(self, units):
        if units.kind == 'head':
            return _head_rows(units.module).norm(p=self.p, dim=1).double().cpu()
        return units.gather(
            lambda name, layer: layer.weight.detach().flatten(1).norm(p=self.p, dim=1),
            layers='convs')


@register_importance
class L1Importance(MagnitudeImportance):
    """L1 filter norm (Li et al., 2017)."""

    def __init__(self):
        super().__init__(p=1)


@register_importance
class L2Importance(MagnitudeImportance):
    """L2 filter norm."""

    def __init__(self):
        super().__init__(p=2)
