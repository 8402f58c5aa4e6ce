# Control for the CPU demo's NPDG recipe (configs/demo/npdg_deeplab_effl0_synthetic.py):
# unpruned, with the same style perturbation: it isolates pruning (a gain this arm
# also has is the perturbation's, not pruning's). Everything else is inherited.
_base_ = ['../../demo/npdg_deeplab_effl0_synthetic.py']
custom_hooks = ['${complexity_hook}', '${style_hook}', '${checkpoint_hook}']
