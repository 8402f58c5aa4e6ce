# CPU demo of NPDG on a Transformer: SegFormer MiT-b0 (random init) on the
# synthetic domains. Units are the attention heads of stages 2-4 (stage 1 has a
# single head and is never head-pruned) and the decode head's BN channels.
_base_ = [
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
crop_size = (96, 96)
max_iters = 800
# NPDG settings; the hooks refer to them as '${name}' (resolved after overrides).
lam = 0.4
sparsity = 0.3  # proximal: lr_t * s * omega per step (AdamW lr 1e-3: ~0.12 over 500 it)
prune_iters = [500]
prune_ratio = 0.3
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                           seg_pad_val=255, size='${crop_size}'),
    pretrained=None,
    backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=32, num_stages=4,
                  num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3],
                  sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3), mlp_ratio=4,
                  qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1),
    decode_head=dict(type='SegformerHead', in_channels=[32, 64, 160, 256],
                     in_index=[0, 1, 2, 3], channels=128, dropout_ratio=0.1, num_classes=19,
                     norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                      loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
optimizer = dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer,
                     paramwise_cfg=dict(norm_decay_mult=0.0,
                                       custom_keys=dict(head_gate=dict(decay_mult=0.0))))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end='${max_iters}', by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters='${max_iters}', val_interval='${max_iters}')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=2),
    visualization=dict(type='SegVisualizationHook', draw=False))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
custom_hooks = [
    dict(type='ModelComplexityHook', input_shape=(3, 128, 256)),
    dict(type='StylePerturbationHook', perturbation=dict(type='AdvStyle'), stylized_ratio=0.5,
         ascent_steps=1),
    dict(type='SensitivityStatisticsHook', interval=50, num_batches=1, num_images=2,
         num_styles=4, num_positions=256, lam='${lam}'),
    dict(type='SensitivitySparsityHook', s='${sparsity}'),
    dict(type='UnitPruningHook', prune_iters='${prune_iters}', ratio='${prune_ratio}', threshold=None,
         importance=dict(type='BNScaleImportance'), min_keep_ratio=0.1,
         trace_shape=(3, 64, 64), flops_shape=(3, 128, 256)),
    dict(type='PrunedCheckpointHook'),
]
