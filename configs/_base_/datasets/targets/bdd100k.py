# BDD100K 10k val (unseen target); labels are train ids already.
bdd100k_root = 'data/bdd100k'
bdd100k_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),
    dict(type='PackSegInputs'),
]
bdd100k_val = dict(
    type='BDD100KDataset',
    data_root=bdd100k_root,
    data_prefix=dict(img_path='images/10k/val', seg_map_path='labels/sem_seg/masks/val'),
    pipeline=bdd100k_test_pipeline,
)
