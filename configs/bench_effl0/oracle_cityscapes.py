# ImageNet benchmark regime (tools/compare.py --oracle): the oracle for synthetic cityscapes, the
# upper bound of the comparison. The source-only recipe (./source_only.py: the source
# warm start + 300 iterations) trained on cityscapes's own *train* split (50 images) instead
# of synthetic GTA5; tested on its val split like every arm.
_base_ = ['./source_only.py']
train_dataloader = dict(
    dataset=dict(_delete_=True, type='CityscapesDataset', data_root='${syn_root}/cityscapes',
                 data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                 pipeline='${syn_train_pipeline}'))
