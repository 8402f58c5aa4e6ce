# NPDG recipe for DeepLabV3+ R50-D8, trained on GTA5, evaluated on the unseen
# Cityscapes / BDD100K / Mapillary (19 classes).
#
#   python tools/train.py configs/npdg/deeplab_gta.py
#   python tools/test.py configs/npdg/deeplab_gta.py work_dirs/deeplab_gta/iter_40000.pth
#
# Foundation stage: this trains the plain (unpruned) source-only baseline with
# the recipe below; the NPDG hooks (style perturbation, sensitivity
# statistics, sparse training, pruning) are added to `custom_hooks` by the
# method itself. configs/baselines/ inherit this file with the method removed,
# so baseline and method always share one recipe.
_base_ = [
    '../_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/gta.py',
    '../_base_/datasets/dg_targets.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly_40k.py',
]

# --- recipe (GTA5 -> Cityscapes/BDD100K/Mapillary, mmseg DG convention) ---
crop_size = (512, 512)          # random 512x512 crops of GTA5 resized to 1280x720 (x0.5-2.0)
max_iters = 40000               # iterations
batch_size = 2                  # images per GPU; 4 GPUs -> total batch 8 (scale lr if not)
lr = 0.01                       # SGD, momentum 0.9, weight decay 5e-4, poly (power 0.9)

model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(batch_size=batch_size)
optimizer = dict(type='SGD', lr=lr, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3,
                    save_best='mIoU', rule='greater'))
randomness = dict(seed=0)
# FLOPs reported by tools/test.py at a Cityscapes-like 512x1024 input.
custom_hooks = [dict(type='ModelComplexityHook', input_shape=(3, 512, 1024))]
