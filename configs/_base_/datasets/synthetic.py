# The synthetic domains (python tools/make_synthetic_domains.py; tools/demo.py
# makes and converts them): train on synthetic GTA5, evaluate on synthetic
# Cityscapes / BDD100K / Mapillary at their native (small) sizes. Same
# datasets, converters and layouts as the real data.
# '${name}' is a reference to the top-level setting `name`, resolved after
# inheritance and --cfg-options (npdg.utils.settings).
syn_root = 'data/synthetic'  # the benchmark regime sets 'data/synthetic_bench'
crop_size = (96, 96)
syn_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),
    dict(type='RandomResize', scale=(192, 106), ratio_range=(1.0, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size='${crop_size}', cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
syn_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='GTA5Dataset', data_root='${syn_root}/gta', split_file='train.txt',
                 pipeline=syn_train_pipeline),
)
# Held-out synthetic GTA5 frames (the source domain), for the source-target gap.
syn_gta_val = dict(type='GTA5Dataset', data_root='${syn_root}/gta', split_file='val.txt',
                   pipeline=syn_test_pipeline)
syn_targets = dict(
    cityscapes=dict(type='CityscapesDataset', data_root='${syn_root}/cityscapes',
                    data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                    pipeline=syn_test_pipeline),
    bdd100k=dict(type='BDD100KDataset', data_root='${syn_root}/bdd100k',
                 data_prefix=dict(img_path='images/10k/val',
                                  seg_map_path='labels/sem_seg/masks/val'),
                 pipeline=syn_test_pipeline),
    mapillary=dict(type='Mapillary19Dataset', data_root='${syn_root}/mapillary',
                   mapping='narrow', pipeline=syn_test_pipeline),
)
# Validation (during training) on held-out *source* frames only; the targets are
# the test set (tools/test.py), never used to choose a checkpoint or a setting.
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiTargetDataset', datasets=dict(gta5=syn_gta_val)),
)
val_evaluator = dict(type='MultiTargetIoUMetric', targets=['gta5'], iou_metrics=['mIoU'])
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiTargetDataset', datasets=syn_targets),
)
test_evaluator = dict(type='MultiTargetIoUMetric',
                      targets=['cityscapes', 'bdd100k', 'mapillary'], iou_metrics=['mIoU'])
# Label-free pseudo-target (benchmarks/accuracy.py): the held-out source frames
# re-styled by a fixed random camera (PseudoTargetStyle); used to choose settings
# without target labels, never a target.
syn_pseudo_target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PseudoTargetStyle', seed=0),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),
    dict(type='PackSegInputs'),
]
