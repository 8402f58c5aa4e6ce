"""Pretrained weights: local-first lookup and a clear stop when missing."""
import pytest
import torch

import npdg  # noqa: F401
from npdg.utils import pretrained

URL = 'https://download.openmmlab.com/pretrain/third_party/resnet50_v1c-2cccc1ad.pth'


def test_alias_resolves_to_url():
    assert pretrained.resolve_url('open-mmlab://resnet50_v1c') == URL


def test_missing_weights_stop_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    monkeypatch.setenv(pretrained.ENV_OFFLINE, '1')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    from mmengine.runner.checkpoint import CheckpointLoader
    with pytest.raises(pretrained.PretrainedWeightsNotFound) as err:
        CheckpointLoader.load_checkpoint('open-mmlab://resnet50_v1c')
    msg = str(err.value)
    assert str(tmp_path / 'resnet50_v1c-2cccc1ad.pth') in msg
    assert 'model.backbone.init_cfg=None' in msg and URL in msg


def test_local_copy_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    monkeypatch.setenv(pretrained.ENV_OFFLINE, '1')
    torch.save(dict(state_dict=dict(x=torch.ones(2))), tmp_path / 'resnet50_v1c-2cccc1ad.pth')
    from mmengine.runner.checkpoint import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint('open-mmlab://resnet50_v1c')
    assert torch.equal(ckpt['state_dict']['x'], torch.ones(2))


def test_backbone_init_stops_instead_of_random_init(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    monkeypatch.setenv(pretrained.ENV_OFFLINE, '1')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    from mmseg.registry import MODELS
    backbone = MODELS.build(dict(
        type='ResNetV1c', depth=18, norm_cfg=dict(type='BN'),
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet18_v1c')))
    with pytest.raises(pretrained.PretrainedWeightsNotFound, match='resnet18_v1c'):
        backbone.init_weights()
