# NPDG recipe for SegFormer MiT-B5, trained on GTA5, evaluated on the unseen
# Cityscapes / BDD100K / Mapillary (19 classes).
#
#   python tools/train.py configs/npdg/segformer_gta.py
#   python tools/test.py configs/npdg/segformer_gta.py work_dirs/segformer_gta/iter_40000.pth
#
# Foundation stage: trains the plain (unpruned) baseline; the NPDG hooks are
# added to `custom_hooks` by the method. configs/baselines/ inherit this file.
_base_ = [
    '../_base_/models/segformer_mit-b5.py',
    '../_base_/datasets/gta.py',
    '../_base_/datasets/dg_targets.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly_40k.py',
]

# --- recipe (DAFormer-style source-only DG training) ---
crop_size = (512, 512)          # random 512x512 crops of GTA5 resized to 1280x720 (x0.5-2.0)
max_iters = 40000               # iterations
batch_size = 2                  # images per GPU; 4 GPUs -> total batch 8
lr = 6e-5                       # AdamW (betas 0.9/0.999, wd 0.01), head lr x10, 1500 it warm-up

model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(batch_size=batch_size)
optimizer = dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.01)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3,
                    save_best='mIoU', rule='greater'))
randomness = dict(seed=0)
custom_hooks = [dict(type='ModelComplexityHook', input_shape=(3, 512, 1024))]
