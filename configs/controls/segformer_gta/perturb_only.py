# Control for the SegFormer MiT-B5 NPDG recipe (configs/npdg/segformer_gta.py):
# Unpruned, with the same style perturbation: the control that isolates pruning
# (a gain this arm also has is the perturbation's, not pruning's).
# Everything else (model, data, schedule, settings) is inherited unchanged.
_base_ = ['../../npdg/segformer_gta.py']
custom_hooks = ['${complexity_hook}', '${style_hook}', '${checkpoint_hook}']
