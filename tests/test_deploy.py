"""ONNX export of pruned models: parity with PyTorch, dynamic axes, the CLI and the benchmark."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from npdg import deploy
from npdg.analysis.complexity import inference_params
from npdg.pruning.pruner import UnitPruner

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def pruned(model, fraction=0.4, channels=True, widths=False):
    """Prune ``fraction`` of the units (channels, heads, optionally widths) by L1 magnitude."""
    pruner = UnitPruner(dict(type='L1Importance'), threshold=None, trace_shape=(3, 64, 64),
                        channels=channels, widths=widths)
    _, units = pruner.units(model)
    pruner.step(model, int(fraction * sum(u.num_units for u in units)))
    return model.eval()


def initializer_shapes(path):
    return {i.name: tuple(i.dims) for i in onnx.load(path).graph.initializer}


def numel(shapes):
    return sum(int(np.prod(s)) for s in shapes.values())


@pytest.mark.parametrize('arch,widths', [('deeplab', False), ('segformer', False),
                                         ('segformer', True)])
def test_pruned_export_matches_torch_at_two_sizes(arch, widths, request, tmp_path):
    model = request.getfixturevalue(arch).eval()
    full = str(tmp_path / 'full.onnx')
    deploy.export_onnx(model, full, (64, 96), dynamic=True)
    params_full = inference_params(model)
    model = pruned(model, widths=widths)  # widths: grouped pruning's FFN/embedding widths
    path = str(tmp_path / 'pruned.onnx')
    deploy.export_onnx(model, path, (64, 96), dynamic=True)
    torch.manual_seed(1)
    for shape in [(1, 3, 64, 96), (2, 3, 96, 64)]:
        x = torch.randn(*shape)
        report = deploy.check_parity(model, path, x)
        assert report['max_abs_diff'] <= 1e-4 * max(1, report['max_abs_logit'])
        assert report['argmax_agreement'] > 0.999
        out = deploy.onnx_session(path).run(None, {'input': x.numpy()})[0]
        assert out.shape == (shape[0], 19, *shape[2:])  # logits at the input size
    # the graph carries the pruned weights: its parameters shrink as the model's do
    ratio = numel(initializer_shapes(path)) / numel(initializer_shapes(full))
    assert ratio < 1
    assert ratio == pytest.approx(inference_params(model) / params_full, rel=0.01)


def test_segformer_export_keeps_the_pruned_heads(segformer, tmp_path):
    model = pruned(segformer.eval(), fraction=0.3, channels=False)
    heads = [blk.attn.num_heads for layer in model.backbone.layers for blk in layer[1]]
    assert heads != [1, 2, 5, 8]  # some heads went
    path = str(tmp_path / 'seg.onnx')
    deploy.export_onnx(model, path, (64, 64))
    x = torch.randn(1, 3, 64, 64)
    assert deploy.check_parity(model, path, x)['argmax_agreement'] > 0.999


def test_parity_check_catches_a_wrong_graph(deeplab, tmp_path):
    model = deeplab.eval()
    path = str(tmp_path / 'm.onnx')
    deploy.export_onnx(model, path, (64, 64))
    proto = onnx.load(path)
    from onnx import numpy_helper
    # the last classifier bias: shift one class's logit by 1
    name = [i.name for i in proto.graph.initializer if 'conv_seg.bias' in i.name][0]
    init = [i for i in proto.graph.initializer if i.name == name][0]
    bias = numpy_helper.to_array(init).copy()
    bias[3] += 1.0
    init.CopyFrom(numpy_helper.from_array(bias, name))
    onnx.save(proto, path)
    with pytest.raises(deploy.OnnxParityError, match='differ from PyTorch by 1'):
        deploy.check_parity(model, path, torch.randn(1, 3, 64, 64))


def test_metadata_tells_the_preprocessing(deeplab, tmp_path):
    path = deploy.export_onnx(deeplab.eval(), str(tmp_path / 'm.onnx'), (64, 64),
                              metadata=dict(config='x.py'))
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(props['mean']) == pytest.approx([123.675, 116.28, 103.53], abs=1e-4)
    assert json.loads(props['std']) == pytest.approx([58.395, 57.12, 57.375], abs=1e-4)
    assert props['bgr_to_rgb'] == 'True' and props['config'] == 'x.py'


def test_export_tool_onnx_on_a_pruned_run(npdg_demo_run, workspace, tmp_path, monkeypatch,
                                          capsys):
    import sys
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import export_pruned
    monkeypatch.chdir(workspace)  # the config's data paths are relative
    cfg = osp.join(ROOT, 'configs', 'demo', 'npdg_deeplab_r18_synthetic.py')
    out = str(tmp_path / 'demo.onnx')
    export_pruned.main([cfg, str(npdg_demo_run / 'iter_3.pth'), '--onnx', out, '--dynamic'])
    printed = capsys.readouterr().out
    assert 'parity:' in printed and 'argmax agreement' in printed
    report = export_pruned.export_onnx(cfg, str(npdg_demo_run / 'iter_3.pth'), out,
                                       dynamic=True)
    assert report['parity']['max_abs_diff'] <= report['parity']['tolerance']
    assert report['parity_other_size']['argmax_agreement'] > 0.999
    # the ONNX graph has the pruned widths of the checkpoint
    from npdg.utils.config import load_config
    from npdg.utils.model import build_segmentor
    model = build_segmentor(load_config(cfg), str(npdg_demo_run / 'iter_3.pth'))
    unpruned = build_segmentor(load_config(cfg))
    shapes = initializer_shapes(out)
    assert tuple(model.decode_head.conv_seg.weight.shape) in shapes.values()
    assert numel(shapes) == pytest.approx(inference_params(model), rel=0.01)
    assert inference_params(model) < 0.8 * inference_params(unpruned)
    # a static export at a given shape, from the test set's first image
    static = str(tmp_path / 'static.onnx')
    report = export_pruned.export_onnx(cfg, str(npdg_demo_run / 'iter_3.pth'), static,
                                       shape=(48, 80))
    assert report['shape'] == [48, 80]
    dims = [d.dim_value for d in onnx.load(static).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 48, 80]


def test_export_tool_needs_an_output(capsys):
    import sys
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import export_pruned
    with pytest.raises(SystemExit):
        export_pruned.parse_args(['a.py', 'b.pth'])
    assert '--onnx' in capsys.readouterr().err


def test_parity_image_that_does_not_exist(deeplab):
    with pytest.raises(FileNotFoundError, match='--image'):
        deploy.parity_input(None, deeplab, image='/nonexistent.png')


def test_deploy_speed_quick_writes_its_table(tmp_path):
    import sys
    sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
    import deploy_speed
    out = str(tmp_path / 'ds.json')
    rows = deploy_speed.main(['--quick', '--out', out])
    saved = json.load(open(out))
    assert saved['rows'][0]['model'] == 'demo'
    variants = rows[0]['variants']
    assert set(variants) == {'base', 'r30', 'flops50'}
    assert variants['flops50']['flops_ratio'] == pytest.approx(0.5, abs=0.05)
    assert variants['r30']['params_m'] < variants['base']['params_m']
    for v in variants.values():
        assert v['parity_argmax_agreement'] > 0.999 and v['onnxruntime_s'] > 0
    assert '| demo 1x3x64x128 | flops50 |' in open(osp.join(tmp_path, 'ds.md')).read()
