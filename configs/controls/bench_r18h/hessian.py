# Criterion arm on the benchmark NPDG recipe (configs/bench/npdg.py):
# diagonal Hessian sum w^2 * E[g^2] (per-sample gradients of 4 clean source batches),
# normalised per layer (mean) and ranked globally, as Riaz & Smeaton (2025) rank groups;
# same perturbation, ratio and prune step; no statistics, no sparse training.
_base_ = ['../../bench/npdg.py']
pruning_hook = dict(importance=dict(_delete_=True, type='HessianImportance', normalizer='mean'))
custom_hooks = ['${complexity_hook}', '${style_hook}', '${pruning_hook}',
                '${checkpoint_hook}']
