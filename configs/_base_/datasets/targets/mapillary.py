# Mapillary Vistas v1.2 validation mapped to the 19 Cityscapes classes (unseen target).
# Run tools/dataset_converters/mapillary.py --mapping narrow first. Evaluated at
# full resolution (HRDA-family protocol); for the Rein-family half-resolution
# protocol add dict(type='Resize', scale_factor=0.5, keep_ratio=True) after
# LoadImageFromFile, and use mapping='wide' for their class mapping.
mapillary_root = 'data/mapillary'
mapillary_mapping = 'narrow'
mapillary_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=19),
    dict(type='PackSegInputs'),
]
mapillary_val = dict(
    type='Mapillary19Dataset',
    data_root=mapillary_root,
    mapping=mapillary_mapping,
    pipeline=mapillary_test_pipeline,
)
