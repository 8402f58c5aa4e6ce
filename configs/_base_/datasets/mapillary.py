# mapillary alone (single-target test set; validation stays on held-out source data,
# configs/_base_/datasets/gta.py).
_base_ = ['./targets/mapillary.py']
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiTargetDataset', datasets=dict(mapillary={{_base_.mapillary_val}})),
)
test_evaluator = dict(type='MultiTargetIoUMetric', targets=['mapillary'], iou_metrics=['mIoU'])
