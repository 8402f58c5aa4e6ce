# Cityscapes val (unseen target). Run tools/dataset_converters/cityscapes.py first.
cityscapes_root = 'data/cityscapes'
cityscapes_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    # Labels are loaded after the resize: evaluation is at the label's own resolution.
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),
    dict(type='PackSegInputs'),
]
cityscapes_val = dict(
    type='CityscapesDataset',
    data_root=cityscapes_root,
    data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
    pipeline=cityscapes_test_pipeline,
)
