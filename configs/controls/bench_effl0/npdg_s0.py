# Control of the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py) for "does
# sparse training hurt?": the same statistics and |gamma| pruning at 150, with no
# sparsity term (s = 0): the warm start's scales, as trained, decide.
_base_ = ['../../bench_effl0/npdg.py']
sparsity = 0.0
