"""Runner hooks (registered in mmseg)."""
from .adasap_hook import AdaSAPHook
from .complexity_hook import ModelComplexityHook
from .distillation_hook import DistillationHook
from .pruned_checkpoint_hook import PrunedCheckpointHook
from .rng_state_hook import RNGStateHook
from .sensitivity_sparsity_hook import SensitivitySparsityHook
from .sensitivity_statistics_hook import SensitivityStatisticsHook
from .style_perturbation_hook import StylePerturbationHook
from .unit_pruning_hook import UnitPruningHook

__all__ = ['AdaSAPHook', 'DistillationHook', 'ModelComplexityHook', 'PrunedCheckpointHook', 'RNGStateHook',
           'SensitivitySparsityHook', 'SensitivityStatisticsHook', 'StylePerturbationHook',
           'UnitPruningHook']
