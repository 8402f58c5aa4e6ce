# Control for the DeepLabV3+ R50-D8 NPDG recipe (configs/npdg/deeplab_gta.py):
# Unpruned, with the same style perturbation: the control that isolates pruning
# (a gain this arm also has is the perturbation's, not pruning's).
# Everything else (model, data, schedule, settings) is inherited unchanged.
_base_ = ['../../npdg/deeplab_gta.py']
custom_hooks = ['${complexity_hook}', '${style_hook}', '${checkpoint_hook}']
