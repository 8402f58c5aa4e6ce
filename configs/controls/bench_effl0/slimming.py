# Control for the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py):
# Network slimming: uniform L1 on the BN scales / head gates (no statistics, omega = 1),
# same perturbation, schedule, prune step, threshold and ratio.
# Everything else (model, data, schedule, settings) is inherited unchanged.
_base_ = ['../../bench_effl0/npdg.py']
sparsity_hook = dict(reweight=False)
custom_hooks = ['${complexity_hook}', '${style_hook}', '${sparsity_hook}',
                '${pruning_hook}', '${distillation_hook}', '${checkpoint_hook}']
