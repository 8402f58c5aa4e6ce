# Unpruned source-only baseline of the real-to-real recipe: exactly
# configs/npdg/deeplab_cityscapes.py (same data, augmentation, schedule, iterations)
# with no NPDG hook, so it is the equal-compute control.
_base_ = ['../npdg/deeplab_cityscapes.py']
custom_hooks = ['${complexity_hook}']  # the recipe's FLOPs report only
