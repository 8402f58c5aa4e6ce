# Control of the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py): a ten
# times weaker sparsity term (s = 0.01 instead of 0.1); everything else unchanged.
_base_ = ['../../bench_effl0/npdg.py']
sparsity = 0.01
