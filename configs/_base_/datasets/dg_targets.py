# The three unseen targets evaluated in one run: per-target mIoU, per-class
# tables and their mean (key "mIoU"); samples are keyed by the dataset they
# came from (MultiTargetDataset), not by path substrings.
_base_ = ['./targets/cityscapes.py', './targets/bdd100k.py', './targets/mapillary.py']
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='MultiTargetDataset',
        datasets=dict(
            cityscapes={{_base_.cityscapes_val}},
            bdd100k={{_base_.bdd100k_val}},
            mapillary={{_base_.mapillary_val}},
        ),
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(
    type='MultiTargetIoUMetric', targets=['cityscapes', 'bdd100k', 'mapillary'],
    iou_metrics=['mIoU'])
test_evaluator = val_evaluator
