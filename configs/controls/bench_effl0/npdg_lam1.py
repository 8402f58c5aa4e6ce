# Ablation of the ImageNet-regime NPDG recipe (configs/bench_effl0/npdg.py): lam = 1,
# w = U only (the domain-shift term; no content-redundancy term B). Issue 17 found U
# and B anti-correlated within layers on the from-scratch model, so that lam = 0.4
# behaves mostly like B.
_base_ = ['../../bench_effl0/npdg.py']
lam = 1.0
