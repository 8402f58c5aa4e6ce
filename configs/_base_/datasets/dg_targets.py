# The three unseen targets evaluated in one run (tools/test.py): per-target mIoU,
# per-class tables and their mean (key "mIoU"); samples are keyed by the dataset
# they came from (MultiTargetDataset), not by path substrings. They are the *test*
# set only: validation during training is on held-out source data (datasets/gta.py).
_base_ = ['./targets/cityscapes.py', './targets/bdd100k.py', './targets/mapillary.py']
test_dataloader = dict(
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
test_evaluator = dict(
    type='MultiTargetIoUMetric', targets=['cityscapes', 'bdd100k', 'mapillary'],
    iou_metrics=['mIoU'])
