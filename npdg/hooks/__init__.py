"""Runner hooks (registered in mmseg)."""
from .complexity_hook import ModelComplexityHook
from .rng_state_hook import RNGStateHook

__all__ = ['ModelComplexityHook', 'RNGStateHook']
