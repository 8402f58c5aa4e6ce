"""Random importance: the control every criterion must beat."""
import zlib

import torch

from .base import Importance, register_importance


@register_importance
class RandomImportance(Importance):
    """Uniform random scores, identical on every rank for a seed.

    Args:
        seed (int, optional): Base seed. None (default): the scoring
            context's seed (the run's seed and the prune iteration), so runs
            with different seeds draw different units; 0 without a context.
            Each layer draws from the seed + a hash of its name, so the
            choice does not depend on layer order or rank.
    """

    unit_kinds = ('channel', 'head', 'width')

    def __init__(self, seed=None):
        self.seed = None if seed is None else int(seed)
        self.calls = 0

    def __call__(self, units, context=None):
        base = self.seed if self.seed is not None else (
            context.seed if context is not None else 0)
        gen = torch.Generator().manual_seed(
            (base + zlib.crc32(units.name.encode()) + 7919 * self.calls) % (2 ** 63))
        return torch.rand(units.num_units, generator=gen, dtype=torch.float64)

    def next_step(self):
        """Advance to fresh draws for the next prune step."""
        self.calls += 1
