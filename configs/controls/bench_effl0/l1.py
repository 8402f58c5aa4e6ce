# Control for the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py):
# L1 filter-norm pruning, normalised per layer (Torch-Pruning's "mean"), at the same
# unit ratio and prune step, same perturbation; no statistics, no sparse training.
# Everything else (model, data, schedule, settings) is inherited unchanged.
_base_ = ['../../bench_effl0/npdg.py']
pruning_hook = dict(importance=dict(_delete_=True, type='L1Importance', normalizer='mean'))
custom_hooks = ['${complexity_hook}', '${style_hook}', '${pruning_hook}', '${distillation_hook}',
                '${checkpoint_hook}']
