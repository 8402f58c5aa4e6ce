# ./slimming.py at half the inference FLOPs (matched to ./npdg_flops50.py).
_base_ = ['./slimming.py']
prune_ratio = None
target_flops_ratio = 0.5
