# Control for the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py):
# Unpruned, with the same style perturbation: the control that isolates pruning
# (a gain this arm also has is the perturbation's, not pruning's).
# Everything else (model, data, schedule, settings) is inherited unchanged.
_base_ = ['../../bench_effl0/npdg.py']
custom_hooks = ['${complexity_hook}', '${style_hook}', '${checkpoint_hook}']
