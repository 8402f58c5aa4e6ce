# Grouped structural global pruning of SegFormer MiT-B0 for domain generalization
# (Riaz & Smeaton, 2025; methods.md section 5), trained on GTA5 and tested on the
# unseen Cityscapes / BDD100K / Mapillary:
#
#   python tools/train.py configs/grouped/segformer_mit-b0_gta.py                  # Hessian, 50 %
#   python tools/train.py configs/grouped/segformer_mit-b0_gta.py \
#       --cfg-options prune_ratio=0.75 criterion=TaylorImportance                   # Taylor, 75 %
#   python tools/test.py configs/grouped/segformer_mit-b0_gta.py work_dirs/.../iter_40000.pth
#
# The units are every dependency-graph group: attention heads, Mix-FFN hidden
# channels, each stage's embedding width (patch embedding, LayerNorms, q/k/v inputs,
# attention and FFN outputs, the decode head's inputs), the key/value reduction width
# and the decode head's BN channels; all coupled weights of a unit go together. They
# are ranked globally (each layer's scores divided by their mean, Torch-Pruning's
# normaliser) and removed once at `prune_iters`, then the model fine-tunes on the
# source to the end. No style perturbation and no sparse training: the paper's
# method is the criterion plus fine-tuning. Unpruned control with the same recipe:
# configs/baselines/segformer_mit-b0_gta.py.
_base_ = ['../npdg/segformer_gta.py']

# MiT-B0 (mmseg's segformer_mit-b0 depth and widths) in place of the recipe's B5.
mit_b0_checkpoint = ('https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/'
                     'segformer/mit_b0_20220624-7e0fe6dd.pth')
model = dict(
    backbone=dict(embed_dims=32, num_layers=[2, 2, 2, 2],
                  init_cfg=dict(type='Pretrained', checkpoint='${mit_b0_checkpoint}')),
    decode_head=dict(in_channels=[32, 64, 160, 256]))

criterion = 'HessianImportance'  # or TaylorImportance, L1Importance, L2Importance, RandomImportance
prune_iters = [8000]             # prune once, after the first fifth; fine-tune to max_iters
prune_ratio = 0.5                # 0.5 / 0.75 / 0.95 of all units (the paper's ratios)
scoring_batches = 8              # source batches the criterion sees (Hessian: per image)

pruning_hook = dict(type='UnitPruningHook', prune_iters='${prune_iters}',
                    ratio='${prune_ratio}', threshold=None,
                    importance=dict(_delete_=True, type='${criterion}', normalizer='mean'),
                    unit_types=('channel', 'head', 'width'), scope='global',
                    min_keep_ratio=0.1, scoring=dict(num_batches='${scoring_batches}'),
                    trace_shape='${trace_shape}', flops_shape='${flops_input}')
custom_hooks = ['${complexity_hook}', '${pruning_hook}', '${checkpoint_hook}']
