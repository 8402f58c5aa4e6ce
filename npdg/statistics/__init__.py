"""NPDG sensitivity statistics (spec 1b): streaming, distributed.

Per layer, a :class:`SensitivityAccumulator` keeps float64 sums of
``(B, K, C, N)`` activations (B images x K styles x C units x N positions);
:func:`sensitivity_scores` turns them into the unary (across-style variance),
binary (mean |correlation| with the other units), normalised and combined
scores; :func:`sparsity_weights` gives the omega of spec 1c;
:func:`all_reduce_` sums the accumulators across ranks.
"""
from .accumulator import SensitivityAccumulator
from .collection import SensitivityStatistics
from .distributed import all_reduce_, is_distributed
from .moments import binary_from_correlation, correlation_from_sums, covariance_from_sums, unary_from_sums
from .sampling import (
                      reduce_head_features,
                      sample_position_indices,
                      split_styles,
                      subsample_head_positions,
                      subsample_positions,
)
from .sensitivity import DEFAULT_LAMBDA, check_lambda, combine, minmax_normalise, sensitivity_scores
from .sparsity import sparsity_weights

__all__ = [
    'SensitivityAccumulator', 'SensitivityStatistics', 'all_reduce_',
    'is_distributed', 'unary_from_sums', 'covariance_from_sums',
    'correlation_from_sums', 'binary_from_correlation', 'split_styles',
    'sample_position_indices', 'subsample_positions',
    'reduce_head_features', 'subsample_head_positions', 'DEFAULT_LAMBDA',
    'check_lambda', 'combine', 'minmax_normalise', 'sensitivity_scores',
    'sparsity_weights'
]
