"""Unit importance criteria (in npdg's own registry, :data:`CRITERIA`).

Add a criterion: subclass :class:`Importance`, implement
``__call__(units, context=None)`` (ask ``context``, a :class:`ScoringContext`,
for gradients, feature maps or statistics) and decorate it with
:func:`register_importance`; the tests parametrised over :data:`IMPORTANCES` then cover it.
"""
from .base import CRITERIA, IMPORTANCES, Importance, build_importance, register_importance
from .bn_scale import BNScaleImportance
from .context import ScoringContext
from .dss import DSSImportance
from .hessian import HessianImportance
from .magnitude import L1Importance, L2Importance, MagnitudeImportance
from .random_importance import RandomImportance
from .risk_variance import DomainRiskVarianceImportance
from .scoring_data import ScoringBatches, ScoringData
from .sensitivity import SensitivityImportance
from .taylor import TaylorImportance

__all__ = ['CRITERIA', 'IMPORTANCES', 'Importance', 'build_importance', 'register_importance',
           'BNScaleImportance', 'MagnitudeImportance', 'L1Importance', 'L2Importance',
           'RandomImportance', 'TaylorImportance', 'HessianImportance', 'DSSImportance',
           'DomainRiskVarianceImportance', 'SensitivityImportance', 'ScoringContext',
           'ScoringBatches', 'ScoringData']
