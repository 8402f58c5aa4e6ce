# bdd100k alone (single-target evaluation).
_base_ = ['./targets/bdd100k.py']
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiTargetDataset', datasets=dict(bdd100k={{_base_.bdd100k_val}})),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTargetIoUMetric', targets=['bdd100k'], iou_metrics=['mIoU'])
test_evaluator = val_evaluator
