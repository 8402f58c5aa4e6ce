# Control for the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py):
# random unit scores (drawn from the run's seed and the prune iteration), same
# perturbation, unit ratio and prune step; no statistics, no sparse training.
# The control every criterion must beat. Everything else is inherited unchanged.
_base_ = ['../../bench_effl0/npdg.py']
pruning_hook = dict(importance=dict(_delete_=True, type='RandomImportance'))
custom_hooks = ['${complexity_hook}', '${style_hook}', '${pruning_hook}', '${distillation_hook}',
                '${checkpoint_hook}']
