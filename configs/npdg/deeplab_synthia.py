# NPDG, SYNTHIA -> Cityscapes / BDD100K / Mapillary: the DeepLabV3+ R50 GTA5 recipe
# (configs/npdg/deeplab_gta.py: model, 512x512 crops, augmentation, schedule, NPDG hooks and
# settings) with SYNTHIA RAND-CITYSCAPES as the source: its frames (1280x760) rescaled by
# 0.5-2.0 and cropped, from the converter's train.txt; validation on its held-out val.txt
# frames, never on a target. Run tools/dataset_converters/synthia.py data/synthia
# --val-fraction 0.15 first (SYNTHIA has no official split).
#
#   python tools/train.py configs/npdg/deeplab_synthia.py
#
# configs/baselines/deeplabv3plus_r50-d8_synthia.py is the equal-compute source-only control.
_base_ = ['./deeplab_gta.py']
synthia_root = 'data/synthia'
source_scale = (1280, 760)
train_dataloader = dict(
    dataset=dict(_delete_=True, type='SynthiaDataset', data_root=synthia_root,
                 split_file='train.txt', pipeline={{_base_.gta_train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='MultiTargetDataset', datasets=dict(
        synthia=dict(type='SynthiaDataset', data_root=synthia_root, split_file='val.txt',
                     pipeline={{_base_.gta_val_pipeline}}))))
val_evaluator = dict(targets=['synthia'])
