# GTA5 (source domain). Run tools/dataset_converters/gta.py first, with
# --split-mat split.mat for the official train/val/test lists.
#
# Training uses the official train split and validation the held-out val split
# of the *source*: checkpoints and hyper-parameters are never chosen on the
# unseen targets (they are only in test_dataloader). Report the last iteration.
gta_root = 'data/gta'
crop_size = (512, 512)
source_scale = (1280, 720)      # frames rescaled to this (x0.5-2.0 in training): GTA5 at 1280x720
gta_train_split = 'train.txt'   # official split (RobustNet family); None: every frame
gta_val_split = 'val.txt'       # held-out source frames for validation
gta_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),  # size match + train-id range
    dict(type='RandomResize', scale='${source_scale}', ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size='${crop_size}', cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
gta_val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale='${source_scale}', keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='GTA5Dataset', data_root='${gta_root}', split_file='${gta_train_split}',
                 pipeline=gta_train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiTargetDataset', datasets=dict(
        gta5=dict(type='GTA5Dataset', data_root='${gta_root}', split_file='${gta_val_split}',
                  pipeline=gta_val_pipeline))),
)
val_evaluator = dict(type='MultiTargetIoUMetric', targets=['gta5'], iou_metrics=['mIoU'])
