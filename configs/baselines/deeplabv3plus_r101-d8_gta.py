# Unpruned source-only baseline of the R101 recipe: exactly configs/npdg/deeplab_r101_gta.py
# with no NPDG hook, so it is the equal-compute control.
_base_ = ['../npdg/deeplab_r101_gta.py']
custom_hooks = ['${complexity_hook}']  # the recipe's FLOPs report only
