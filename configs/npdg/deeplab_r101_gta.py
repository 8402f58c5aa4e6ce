# NPDG with the paper's CNN: DeepLabV3+ ResNet-101-V1c (output stride 8), GTA5 ->
# Cityscapes / BDD100K / Mapillary. Exactly configs/npdg/deeplab_gta.py (data, 512x512
# crops, 40k iterations, NPDG settings) with the deeper backbone and its ImageNet weights
# (open-mmlab://resnet101_v1c, resolved locally: docs/reliability.md "Pretrained weights").
# configs/baselines/deeplabv3plus_r101-d8_gta.py is its equal-compute source-only control.
_base_ = ['./deeplab_gta.py']
model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
