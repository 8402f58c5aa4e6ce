# Bar (d) probe, Lite2: plain L1 at 0.75x FLOPs without the perturbation
# (../controls/bench_effl0/l1_source.py) on EfficientNet-Lite2, from ./pretrain_source.py.
_base_ = ['../controls/bench_effl0/l1_source.py']
warm_start = 'work_dirs/pretrain_source_effl2/iter_3000.pth'
model = dict(
    backbone=dict(arch='lite2', init_cfg=dict(checkpoint='efficientnet-lite2')),
    decode_head=dict(in_channels=352),
    auxiliary_head=dict(in_channels=120))
