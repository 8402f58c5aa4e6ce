# CPU demo baseline: small DeepLabV3+ (ResNet-18, OS16) trained from scratch on
# synthetic GTA5, tested on synthetic Cityscapes / BDD100K / Mapillary.
# Used by tools/demo.py; runs in a few minutes on 2 CPU cores.
_base_ = [
    '../_base_/models/deeplabv3plus_r18_os16_small.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly_40k.py',
]
crop_size = (96, 96)            # random crops of the 192x106 synthetic GTA5 frames (x1-2)
max_iters = 800                 # iterations
batch_size = 8                  # images per iteration
lr = 0.02                       # SGD, momentum 0.9, weight decay 5e-4, poly (power 0.9)

# '${name}' refers to the setting above; it is resolved after inheritance and
# --cfg-options, so `--cfg-options max_iters=1600` changes what runs.
model = dict(data_preprocessor=dict(size='${crop_size}'))
train_dataloader = dict(batch_size='${batch_size}')
optimizer = dict(type='SGD', lr='${lr}', momentum=0.9, weight_decay=0.0005)
# No weight decay on BN weights (the NPDG units' scales; every arm shares this recipe).
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None,
                     paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end='${max_iters}', by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters='${max_iters}', val_interval='${max_iters}')  # validate once, at the end
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=2),
    visualization=dict(type='SegVisualizationHook', draw=False),
)
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
# FLOPs at the synthetic Cityscapes size.
custom_hooks = [dict(type='ModelComplexityHook', input_shape=(3, 128, 256))]
