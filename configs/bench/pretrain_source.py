# Benchmark regime (benchmarks/accuracy.py), step 0: the warm start every arm
# begins from, the CPU stand-in for the ImageNet weights of the published
# recipes. It is NOT ImageNet: DeepLabV3+ on a half-width ResNet-18-V1c
# (32-64-128-256 channels, 64-channel ASPP) trained from scratch on synthetic
# GTA5 (the source; 680 train frames, 120 held out) for 6000 iterations. No
# target image is used. Data: data/synthetic_bench, made with
# appearance_shift=3 (benchmarks/accuracy.py makes it; see docs/results.md).
#
#   python tools/train.py configs/bench/pretrain_source.py   # ~13 min, 2 CPU cores
_base_ = ['../demo/deeplab_r18_synthetic.py']
syn_root = 'data/synthetic_bench'
max_iters = 6000
model = dict(
    # mmseg's default zero-initialised residual BNs, as this warm start was made
    # (its cached results stay reproducible). No sparsity runs in this recipe, and
    # the 6000 iterations move those scales off 0 before any arm starts from it.
    backbone=dict(stem_channels=32, base_channels=32, zero_init_residual=True),
    decode_head=dict(in_channels=256, c1_in_channels=32, channels=64),
    auxiliary_head=dict(in_channels=128, channels=32),
)
default_hooks = dict(checkpoint=dict(interval=1000, max_keep_ckpts=1))
