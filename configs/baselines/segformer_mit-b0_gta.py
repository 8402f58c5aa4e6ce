# Unpruned source-only control of configs/grouped/segformer_mit-b0_gta.py: the same
# SegFormer MiT-B0 recipe (data, schedule, optimizer, iterations) with no pruning.
_base_ = ['../grouped/segformer_mit-b0_gta.py']
custom_hooks = ['${complexity_hook}']  # the recipe's FLOPs report only
