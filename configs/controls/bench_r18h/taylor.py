# Criterion arm on the benchmark NPDG recipe (configs/bench/npdg.py):
# first-order Taylor |sum theta * dL/dtheta| per unit on 4 clean source batches
# (the step's ScoringContext), normalised per layer (mean) and ranked globally;
# same perturbation, ratio and prune step; no statistics, no sparse training.
_base_ = ['../../bench/npdg.py']
pruning_hook = dict(importance=dict(_delete_=True, type='TaylorImportance', normalizer='mean'))
custom_hooks = ['${complexity_hook}', '${style_hook}', '${pruning_hook}',
                '${checkpoint_hook}']
