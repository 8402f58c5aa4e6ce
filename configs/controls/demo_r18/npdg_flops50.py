# The CPU demo NPDG recipe (configs/demo/npdg_deeplab_r18_synthetic.py) at half the inference FLOPs
# instead of r = 0.3 of the units; the *_flops50 controls prune to the same FLOPs target.
_base_ = ['../../demo/npdg_deeplab_r18_synthetic.py']
prune_ratio = None
target_flops_ratio = 0.5
