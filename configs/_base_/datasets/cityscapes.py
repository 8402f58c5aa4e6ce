# cityscapes alone (single-target evaluation).
_base_ = ['./targets/cityscapes.py']
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiTargetDataset', datasets=dict(cityscapes={{_base_.cityscapes_val}})),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTargetIoUMetric', targets=['cityscapes'], iou_metrics=['mIoU'])
test_evaluator = val_evaluator
