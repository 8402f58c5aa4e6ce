# Criterion arm on the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py):
# first-order Taylor |sum theta * dL/dtheta| per unit on 4 clean source batches
# (the step's ScoringContext), normalised per layer (mean) and ranked globally;
# same perturbation, ratio and prune step; no statistics, no sparse training.
_base_ = ['../../bench_effl0/npdg.py']
pruning_hook = dict(importance=dict(_delete_=True, type='TaylorImportance', normalizer='mean'))
custom_hooks = ['${complexity_hook}', '${style_hook}', '${pruning_hook}', '${distillation_hook}',
                '${checkpoint_hook}']
