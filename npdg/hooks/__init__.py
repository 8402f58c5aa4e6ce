"""Runner hooks (registered in mmseg)."""
from .complexity_hook import ModelComplexityHook

__all__ = ['ModelComplexityHook']
