"""Random importance: the control every criterion must beat."""
import zlib

import torch

from .base import Importance, register_importance


@register_importance
class RandomImportance(Importance):
    """Uniform random scores, identical on every rank for a seed.

    Args:
        seed (int): Base seed; each layer draws from ``seed`` + a hash of
            its name, so the choice does not depend on layer order or rank.
    """

    def __init__(self, seed=0):
        self.seed = int(seed)
        self.calls = 0

    def __call__(self, units):
        gen = torch.Generator().manual_seed(
            self.seed + zlib.crc32(units.name.encode()) + 7919 * self.calls)
        return torch.rand(units.num_units, generator=gen, dtype=torch.float64)

    def next_step(self):
        """Advance to fresh draws for the next prune step."""
        self.calls += 1
