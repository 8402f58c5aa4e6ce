# Unpruned source-only baseline of the EfficientNet-Lite0 recipe: exactly
# configs/npdg/deeplab_effl0_gta.py (same data, augmentation, schedule, iterations)
# with no NPDG hook, so it is the equal-compute control.
_base_ = ['../npdg/deeplab_effl0_gta.py']
custom_hooks = ['${complexity_hook}']  # the recipe's FLOPs report only
