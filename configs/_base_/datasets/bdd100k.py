# bdd100k alone (single-target test set; validation stays on held-out source data,
# configs/_base_/datasets/gta.py).
_base_ = ['./targets/bdd100k.py']
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiTargetDataset', datasets=dict(bdd100k={{_base_.bdd100k_val}})),
)
test_evaluator = dict(type='MultiTargetIoUMetric', targets=['bdd100k'], iou_metrics=['mIoU'])
