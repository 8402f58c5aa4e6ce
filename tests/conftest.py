"""Shared fixtures: small mmseg segmentors built from config dicts."""
import pytest
import torch

import npdg  # noqa: F401

NORM = dict(type='BN', requires_grad=True)
PRE = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255)


def deeplab_r18_cfg(channels=32):
    """A small DeepLabV3+ R18 (OS16) with an auxiliary FCN head."""
    return dict(
        type='EncoderDecoder', data_preprocessor=PRE,
        backbone=dict(type='ResNetV1c', depth=18, out_indices=(0, 1, 2, 3),
                      dilations=(1, 1, 1, 2), strides=(1, 2, 2, 1), norm_cfg=NORM,
                      contract_dilation=True),
        decode_head=dict(type='DepthwiseSeparableASPPHead', in_channels=512, in_index=3,
                         channels=channels, dilations=(1, 6, 12, 18), c1_in_channels=64,
                         c1_channels=8, num_classes=19, norm_cfg=NORM,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        auxiliary_head=dict(type='FCNHead', in_channels=256, in_index=2, channels=16,
                            num_convs=1, concat_input=False, num_classes=19, norm_cfg=NORM,
                            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def segformer_b0_cfg():
    """A small SegFormer (MiT-b0 widths, 1 block per stage)."""
    return dict(
        type='EncoderDecoder', data_preprocessor=PRE,
        backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=32,
                      num_stages=4, num_layers=[1, 1, 1, 1], num_heads=[1, 2, 5, 8],
                      patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
                      out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True),
        decode_head=dict(type='SegformerHead', in_channels=[32, 64, 160, 256],
                         in_index=[0, 1, 2, 3], channels=32, num_classes=19, norm_cfg=NORM,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def build(cfg):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    return MODELS.build(cfg)


@pytest.fixture
def deeplab():
    return build(deeplab_r18_cfg())


@pytest.fixture
def segformer():
    from npdg.models import convert_mit_attention
    model = build(segformer_b0_cfg())
    convert_mit_attention(model)
    return model
