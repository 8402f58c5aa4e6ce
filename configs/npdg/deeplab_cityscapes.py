# NPDG, real to real: DeepLabV3+ R50-D8 trained on Cityscapes, evaluated on the unseen
# BDD100K and Mapillary (the paper's real-source setting).
#
#   python tools/train.py configs/npdg/deeplab_cityscapes.py
#   python tools/test.py configs/npdg/deeplab_cityscapes.py work_dirs/deeplab_cityscapes/iter_40000.pth
#
# Exactly the GTA5 recipe (configs/npdg/deeplab_gta.py: model, 512x512 crops, schedule, NPDG
# hooks and settings) with the data swapped: Cityscapes' train split (2975 frames, random
# rescale of 2048x1024 by 0.5-2.0, crop, flip, photometric distortion) is the source;
# validation is on Cityscapes val (held-out *source* frames; no checkpoint is chosen on it
# either: report the last iteration); the targets BDD100K and Mapillary are only in
# test_dataloader. Cityscapes is the source here, so it is not a target.
# configs/baselines/deeplabv3plus_r50-d8_cityscapes.py is the equal-compute source-only control.
_base_ = ['./deeplab_gta.py']

source_scale = (2048, 1024)  # the GTA5 recipe's augmentation at Cityscapes' size
train_dataloader = dict(
    dataset=dict(_delete_=True, type='CityscapesDataset', data_root={{_base_.cityscapes_root}},
                 data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                 pipeline={{_base_.gta_train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='MultiTargetDataset',
                 datasets=dict(cityscapes={{_base_.cityscapes_val}})))
val_evaluator = dict(targets=['cityscapes'])
test_dataloader = dict(
    dataset=dict(_delete_=True, type='MultiTargetDataset', datasets=dict(
        bdd100k={{_base_.bdd100k_val}}, mapillary={{_base_.mapillary_val}})))
test_evaluator = dict(targets=['bdd100k', 'mapillary'])
