# SYNTHIA RAND-CITYSCAPES (source domain). Run tools/dataset_converters/synthia.py
# data/synthia --val-fraction 0.15 first: SYNTHIA has no official split, so the last 15 % of
# the frames (by name) are held out as source validation data (never a target).
synthia_root = 'data/synthia'
synthia_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),
    dict(type='RandomResize', scale=(1280, 760), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size='${crop_size}', cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
synthia_val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1280, 760), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),
    dict(type='PackSegInputs'),
]
