# NPDG, SYNTHIA -> Cityscapes / BDD100K / Mapillary: the DeepLabV3+ R50 GTA5 recipe
# (configs/npdg/deeplab_gta.py: model, 512x512 crops, schedule, NPDG hooks and settings)
# with SYNTHIA RAND-CITYSCAPES as the source (its train.txt; validation on its held-out
# val.txt frames, never on a target). Run tools/dataset_converters/synthia.py first.
#
#   python tools/train.py configs/npdg/deeplab_synthia.py
#
# configs/baselines/deeplabv3plus_r50-d8_synthia.py is the equal-compute source-only control.
_base_ = ['./deeplab_gta.py', '../_base_/datasets/synthia.py']
train_dataloader = dict(
    dataset=dict(_delete_=True, type='SynthiaDataset', data_root={{_base_.synthia_root}},
                 split_file='train.txt', pipeline={{_base_.synthia_train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='MultiTargetDataset', datasets=dict(
        synthia=dict(type='SynthiaDataset', data_root={{_base_.synthia_root}},
                     split_file='val.txt', pipeline={{_base_.synthia_val_pipeline}}))))
val_evaluator = dict(targets=['synthia'])
