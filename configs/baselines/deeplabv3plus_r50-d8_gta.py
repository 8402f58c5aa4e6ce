# Unpruned source-only baseline: exactly the NPDG DeepLabV3+ recipe
# (configs/npdg/deeplab_gta.py: same data, augmentation, schedule, iterations)
# with no NPDG hook, so it is the equal-compute control.
_base_ = ['../npdg/deeplab_gta.py']
custom_hooks = ['${complexity_hook}']  # the recipe's FLOPs report only
