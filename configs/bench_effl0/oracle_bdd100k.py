# ImageNet benchmark regime (tools/compare.py --oracle): the oracle for synthetic bdd100k, the
# upper bound of the comparison. The source-only recipe (./source_only.py: the source
# warm start + 300 iterations) trained on bdd100k's own *train* split (50 images) instead
# of synthetic GTA5; tested on its val split like every arm.
_base_ = ['./source_only.py']
train_dataloader = dict(
    dataset=dict(_delete_=True, type='BDD100KDataset', data_root='${syn_root}/bdd100k',
                 data_prefix=dict(img_path='images/10k/train',
                                  seg_map_path='labels/sem_seg/masks/train'),
                 pipeline='${syn_train_pipeline}'))
