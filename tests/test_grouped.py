"""Grouped global pruning of transformers: width units (no BN), every criterion that scores them."""
import copy
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from conftest import build, segformer_b0_cfg

import npdg  # noqa: F401
from npdg.analysis.complexity import segmentor_complexity
from npdg.importance import IMPORTANCES
from npdg.importance.unit_params import unit_slices
from npdg.models import convert_mit_attention
from npdg.pruning.pruner import UnitPruner
from npdg.pruning.structure import add_structure, load_pruned_checkpoint
from npdg.pruning.units import collect_units

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _registered(name):
    from npdg.importance import CRITERIA
    return CRITERIA.get(name)


WIDTH_CRITERIA = sorted(n for n in IMPORTANCES if 'width' in _registered(n).unit_kinds)
OTHER_CRITERIA = sorted(n for n in IMPORTANCES if 'width' not in _registered(n).unit_kinds)


def _model():
    model = build(segformer_b0_cfg())
    convert_mit_attention(model)
    return model.eval()


def test_width_units_are_ffn_embedding_and_reduction_widths():
    """conftest's MiT: widths 32/64/160/256, mlp_ratio 4, sr 8/4/2/1, one block per stage."""
    _, units = collect_units(_model(), widths=True)
    widths = {u.name: u.num_units for u in units if u.kind == 'width'}
    expected = {}
    for stage, (c, sr) in enumerate(zip((32, 64, 160, 256), (8, 4, 2, 1))):
        block = f'backbone.layers.{stage}.1.0'
        expected[f'{block}.ffn.layers.1'] = 4 * c     # Mix-FFN hidden channels (dw conv root)
        expected[f'{block}.ffn.layers.4'] = c         # the stage's embedding width
        if sr > 1:
            expected[f'{block}.attn.sr'] = c          # key/value reduction width
    assert widths == expected
    embed = next(u for u in units if u.name == 'backbone.layers.0.1.0.ffn.layers.4')
    # the embedding width carries the patch embedding, every LayerNorm, attention and FFN
    # outputs and the decode head's input
    names = {n for n, *_ in embed.convs + embed.norms}
    assert {'backbone.layers.0.0.projection', 'backbone.layers.0.0.norm',
            'backbone.layers.0.1.0.norm1', 'backbone.layers.0.1.0.norm2',
            'backbone.layers.0.1.0.attn.proj', 'backbone.layers.0.2'} <= names
    # q/k/v widths belong to the heads, never to a width unit
    assert not any(n.endswith(('.q', '.k', '.v')) for u in units if u.kind == 'width'
                   for n, *_ in u.convs)
    # NPDG's units are unchanged without widths
    _, plain = collect_units(_model())
    assert {u.kind for u in plain} == {'channel', 'head'}
    # LayerNorm scale and shift are owned by the width unit
    slices = {p for p, *_ in unit_slices(embed)}
    assert {'backbone.layers.0.1.0.norm1.weight', 'backbone.layers.0.1.0.norm1.bias'} <= slices


@pytest.mark.parametrize('criterion', WIDTH_CRITERIA)
def test_every_width_criterion_prunes_half_and_reloads_bit_exactly(criterion):
    from conftest import register_random_dataset
    from mmengine.dataset import pseudo_collate
    from mmseg.registry import DATASETS

    from npdg.importance import ScoringBatches, ScoringContext
    register_random_dataset()
    model = _model()
    pruner = UnitPruner(dict(type=criterion), None, widths=True)
    _, units = pruner.units(model)
    total = sum(u.num_units for u in units)
    before = segmentor_complexity(model, (3, 64, 64))
    context = ScoringContext(model, batches=ScoringBatches(
        DATASETS.build(dict(type='RandomSegDataset', length=4)), pseudo_collate, 2, 1, seed=0))
    result = pruner.step(model, total // 2, context=context)
    assert result.removed == total // 2
    kinds = {layer['kind'] for layer in result.layers if layer['removed']}
    assert 'width' in kinds
    after = segmentor_complexity(model, (3, 64, 64))
    assert after['gflops'] < 0.8 * before['gflops'] and after['params'] < before['params']
    for m in model.modules():  # per-head attention knows its new residual width
        if hasattr(m, 'embed_dims') and hasattr(m, 'q'):
            assert m.embed_dims == m.q.in_features
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        out = model(x, mode='tensor')
    checkpoint = {'state_dict': copy.deepcopy(model.state_dict())}
    add_structure(checkpoint, model)
    fresh = build(segformer_b0_cfg())
    load_pruned_checkpoint(fresh, checkpoint)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x, mode='tensor'), out)


@pytest.mark.parametrize('criterion', OTHER_CRITERIA)
def test_scale_and_statistics_criteria_refuse_width_units(criterion):
    with pytest.raises(ValueError, match=r"cannot score \['width'\] units"):
        UnitPruner(dict(type=criterion), None, widths=True)


def test_hook_rejects_unknown_unit_types():
    from npdg.hooks import UnitPruningHook
    with pytest.raises(ValueError, match='unknown unit type'):
        UnitPruningHook(prune_iters=[2], unit_types=('channel', 'ffn'))


def test_grouped_recipe_trains_prunes_widths_and_tests(workspace, tmp_path):
    """configs/grouped/segformer_mit-b0_gta.py: 4 iterations on the miniature, prune at 2."""
    from npdg.apis import experiment
    work = str(tmp_path / 'run')
    cfg = experiment.recipe_run_config(osp.join(ROOT, 'configs/grouped/segformer_mit-b0_gta.py'),
                                       str(workspace / 'data' / 'synthetic'), work, 4,
                                       prune_at=2, small=True)
    for args in (['tools/train.py', cfg, '--work-dir', work],
                 ['tools/test.py', cfg, osp.join(work, 'iter_4.pth'), '--work-dir',
                  str(tmp_path / 't')]):
        proc = subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    step = json.load(open(osp.join(work, 'pruning', 'pruning_report.json')))['steps'][0]
    assert step['removed'] == int(0.5 * step['total'])
    assert {layer['kind'] for layer in step['layers'] if layer['removed']} >= {'width'}
    assert step['gflops_after'] < 0.6 * step['gflops_before']
    report = json.load(open(osp.join(work, 'pruning', 'pruning_report.json')))
    assert report['settings']['importance']['type'] == 'HessianImportance'


def vit_cfg():
    """A small mmseg ViT (packed nn.MultiheadAttention) with an FCN head."""
    from conftest import NORM, PRE
    return dict(
        type='EncoderDecoder', data_preprocessor=PRE,
        backbone=dict(type='VisionTransformer', img_size=(64, 64), patch_size=16, in_channels=3,
                      embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=4, out_indices=(1, ),
                      final_norm=True, with_cls_token=True, interpolate_mode='bicubic'),
        decode_head=dict(type='FCNHead', in_channels=64, channels=32, num_convs=1,
                         concat_input=False, in_index=0, num_classes=19, norm_cfg=NORM,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def test_vit_ffn_widths_prune_and_reload_while_the_embedding_width_stays():
    model = build(vit_cfg()).eval()
    pruner = UnitPruner(dict(type='L2Importance', normalizer='mean'), None, widths=True)
    _, units = pruner.units(model)
    assert {(u.kind, u.name, u.num_units) for u in units} == {
        ('channel', 'decode_head.convs.0.conv', 32),
        ('width', 'backbone.layers.0.ffn.layers.0.0', 256),
        ('width', 'backbone.layers.1.ffn.layers.0.0', 256)}
    before = segmentor_complexity(model, (3, 64, 64))
    pruner.step(model, 272)
    assert [layer.ffn.layers[0][0].out_features for layer in model.backbone.layers] != [256, 256]
    assert all(layer.attn.attn.embed_dim == 64 for layer in model.backbone.layers)
    assert segmentor_complexity(model, (3, 64, 64))['gflops'] < before['gflops']
    x = torch.rand(1, 3, 64, 64) * 255
    checkpoint = {'state_dict': copy.deepcopy(model.state_dict())}
    add_structure(checkpoint, model)
    fresh = build(vit_cfg())
    load_pruned_checkpoint(fresh, checkpoint)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x, mode='tensor'), model(x, mode='tensor'))


def test_grouped_recipe_and_its_unpruned_control_differ_only_in_pruning():
    from npdg.apis import experiment
    recipe = experiment.load_config(osp.join(ROOT, 'configs/grouped/segformer_mit-b0_gta.py'))
    control = experiment.load_config(osp.join(ROOT, 'configs/baselines/segformer_mit-b0_gta.py'))
    for key in ('model', 'train_dataloader', 'test_dataloader', 'val_dataloader',
                'optim_wrapper', 'param_scheduler', 'train_cfg', 'randomness'):
        assert recipe[key] == control[key], key
    assert [h['type'] for h in control.custom_hooks] == ['ModelComplexityHook']
    prune = next(h for h in recipe.custom_hooks if h['type'] == 'UnitPruningHook')
    assert prune['unit_types'] == ('channel', 'head', 'width') and prune['scope'] == 'global'
    assert prune['importance'] == dict(type='HessianImportance', normalizer='mean')
    # no perturbation and no sparse training: the paper's method is criterion + fine-tuning
    assert {h['type'] for h in recipe.custom_hooks} == {
        'ModelComplexityHook', 'UnitPruningHook', 'PrunedCheckpointHook'}
    # MiT-B0 widths, not the B5 recipe's
    assert recipe.model.backbone.embed_dims == 32
    assert recipe.model.decode_head.in_channels == [32, 64, 160, 256]
    taylor = experiment.load_config(osp.join(ROOT, 'configs/grouped/segformer_mit-b0_gta.py'),
                                    dict(criterion='TaylorImportance', prune_ratio=0.75))
    prune = next(h for h in taylor.custom_hooks if h['type'] == 'UnitPruningHook')
    assert prune['importance']['type'] == 'TaylorImportance' and prune['ratio'] == 0.75
