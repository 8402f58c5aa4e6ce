"""Unit importance criteria (registered in mmseg's MODELS registry).

Add a criterion: subclass :class:`Importance`, implement ``__call__(units)``
and decorate it with :func:`register_importance`; the tests parametrised
over :data:`IMPORTANCES` then cover it.
"""
from .base import IMPORTANCES, Importance, build_importance, register_importance
from .bn_scale import BNScaleImportance
from .magnitude import L1Importance, L2Importance, MagnitudeImportance
from .random_importance import RandomImportance

__all__ = ['IMPORTANCES', 'Importance', 'build_importance', 'register_importance',
           'BNScaleImportance', 'MagnitudeImportance', 'L1Importance', 'L2Importance',
           'RandomImportance']
