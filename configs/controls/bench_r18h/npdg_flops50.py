# The benchmark NPDG recipe (configs/bench/npdg.py) at half the inference FLOPs
# instead of r = 0.3 of the units; the *_flops50 controls prune to the same FLOPs target.
_base_ = ['../../bench/npdg.py']
prune_ratio = None
target_flops_ratio = 0.5
