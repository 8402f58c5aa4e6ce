# Unpruned source-only baseline: exactly the NPDG SegFormer recipe
# (configs/npdg/segformer_gta.py) with no NPDG hook (the equal-compute control).
_base_ = ['../npdg/segformer_gta.py']
custom_hooks = ['${complexity_hook}']  # the recipe's FLOPs report only
