# Bar (d) probe, Lite2: the ImageNet regime's source-only arm (../bench_effl0/source_only.py)
# on EfficientNet-Lite2, from ./pretrain_source.py's warm start.
_base_ = ['../bench_effl0/source_only.py']
warm_start = 'work_dirs/pretrain_source_effl2/iter_3000.pth'
model = dict(
    backbone=dict(arch='lite2', init_cfg=dict(checkpoint='efficientnet-lite2')),
    decode_head=dict(in_channels=352),
    auxiliary_head=dict(in_channels=120))
