"""Runner-facing parts of npdg: the hook contract, the hook order, the
checkpoint namespace (pure module surgery lives in :mod:`npdg.pruning`)."""
from . import ckpt_state
from .hook_base import NpdgHook
from .hook_order import REQUIRED_ORDER, check_hook_order, order_violations
from .runner import NpdgRunner

__all__ = ['NpdgHook', 'NpdgRunner', 'REQUIRED_ORDER', 'check_hook_order', 'order_violations', 'ckpt_state']
