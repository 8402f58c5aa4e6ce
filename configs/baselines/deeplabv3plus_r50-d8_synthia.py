# Unpruned source-only baseline of the SYNTHIA recipe: exactly configs/npdg/deeplab_synthia.py
# with no NPDG hook, so it is the equal-compute control.
_base_ = ['../npdg/deeplab_synthia.py']
custom_hooks = ['${complexity_hook}']  # the recipe's FLOPs report only
