# GTA5 (source domain) training data. Run tools/dataset_converters/gta.py first.
gta_root = 'data/gta'
crop_size = (512, 512)
gta_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),  # size match + train-id range
    dict(type='RandomResize', scale=(1280, 720), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size='${crop_size}', cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='GTA5Dataset',
        data_root='${gta_root}',
        # split_file='train.txt',  # official split protocol (RobustNet family)
        pipeline=gta_train_pipeline,
    ),
)
