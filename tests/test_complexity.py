"""FLOPs/params of the inference path, latency helper and ModelComplexityHook."""
import json
import os.path as osp
import time
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmseg.registry import HOOKS, MODELS

import npdg  # noqa: F401  (registers npdg's modules; must precede mmseg)
from npdg.analysis import format_complexity, measure_latency, segmentor_complexity, segmentor_latency
from npdg.hooks import ModelComplexityHook

SHAPE = (3, 16, 20)


class HandModel(BaseModel):
    """conv1 (3x3) -> relu -> conv2 (1x1) -> conv3 (3x3, stride 2) -> +1."""

    def __init__(self, width=16):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 8, 1)
        self.conv3 = nn.Conv2d(8, 4, 3, stride=2, padding=1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.conv3(self.conv2(torch.relu(self.conv1(x)))) + 1
        if mode == 'predict':
            return [dict(score=o.mean()) for o in out]
        return out


def hand_flops(width=16, h=16, w=20):
    """Multiply-accumulates: Cout * Cin * kh * kw * Hout * Wout per conv."""
    conv1 = width * 3 * 3 * 3 * h * w
    conv2 = 8 * width * 1 * 1 * h * w
    conv3 = 4 * 8 * 3 * 3 * (h // 2) * (w // 2)
    return conv1 + conv2 + conv3


def hand_params(width=16):
    return (width * 27 + width) + (8 * width + 8) + (4 * 72 + 4)


def build_segmentor(aux=True, head_channels=64):
    init_default_scope('mmseg')
    cfg = ConfigDict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0],
                               std=[1, 1, 1]),
        backbone=dict(type='ResNetV1c', depth=18, norm_cfg=dict(type='BN'),
                      init_cfg=None),
        decode_head=dict(type='DepthwiseSeparableASPPHead', in_channels=512,
                         in_index=3, channels=head_channels,
                         c1_in_channels=64, c1_channels=16, num_classes=19,
                         dilations=(1, 12, 24, 36),
                         norm_cfg=dict(type='BN')),
        test_cfg=dict(mode='whole'))
    if aux:
        cfg.auxiliary_head = dict(type='FCNHead', in_channels=256,
                                  in_index=2, channels=32, num_classes=19,
                                  norm_cfg=dict(type='BN'))
    return MODELS.build(cfg)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope='module')
def segmentor():
    torch.manual_seed(0)
    return build_segmentor()


# -------------------------------------------------------------- complexity
def test_hand_counted_conv_model():
    info = segmentor_complexity(HandModel(), SHAPE)
    assert info['flops'] == hand_flops() == 202240
    assert info['gflops'] == pytest.approx(202240 / 1e9)
    assert info['params'] == info['params_total'] == hand_params() == 876
    assert info['input_shape'] == SHAPE
    assert info['skipped_ops'] == ['aten::add']  # relu is ignored silently
    assert format_complexity(info) == (
        'GFLOPs 0.00 | params 0.00 M | input 3x16x20 (counter skips: add)')


def test_halving_conv_channels_halves_its_flops():
    full = segmentor_complexity(HandModel(16), SHAPE)['flops']
    half = segmentor_complexity(HandModel(8), SHAPE)['flops']
    assert half == hand_flops(8) < full
    # conv1 and conv2 scale with the width; conv3 does not.
    assert full - half == hand_flops(16) - hand_flops(8) == 89600


def test_segmentor_excludes_aux_head(segmentor):
    info = segmentor_complexity(segmentor, (3, 64, 64))
    used = (n_params(segmentor.backbone) + n_params(segmentor.decode_head))
    aux = n_params(segmentor.auxiliary_head)
    assert aux > 0
    assert info['params'] == used
    assert info['params_total'] == used + aux == n_params(segmentor)
    no_aux = build_segmentor(aux=False)
    info_no_aux = segmentor_complexity(no_aux, (3, 64, 64))
    # The aux head runs only in training: same FLOPs without it.
    assert info_no_aux['flops'] == info['flops'] > 0
    assert info_no_aux['params'] == info_no_aux['params_total'] == used
    assert all(isinstance(op, str) for op in info['skipped_ops'])
    assert 'counter skips' in format_complexity(info)
    narrow = segmentor_complexity(build_segmentor(head_channels=32),
                                  (3, 64, 64))
    assert narrow['flops'] < info['flops']
    # FLOPs grow with the input size.
    assert segmentor_complexity(segmentor,
                                (3, 64, 128))['flops'] > info['flops']


def test_modes_restored_and_wrapper_unwrapped(segmentor):
    segmentor.train()
    segmentor.backbone.layer1.eval()  # a deliberately frozen part
    before = {name: m.training for name, m in segmentor.named_modules()}
    info = segmentor_complexity(segmentor, (3, 64, 64))
    after = {name: m.training for name, m in segmentor.named_modules()}
    assert after == before and segmentor.training
    assert not segmentor.backbone.layer1.training
    wrapped = segmentor_complexity(nn.DataParallel(segmentor), (3, 64, 64))
    assert wrapped['flops'] == info['flops']
    assert wrapped['params'] == info['params']
    assert segmentor.training
    # BN running stats untouched (eval mode + no_grad during counting).
    assert segmentor.backbone.stem[1].num_batches_tracked.item() == 0


def test_bad_input_shape():
    with pytest.raises(ValueError, match='C, H, W'):
        segmentor_complexity(HandModel(), (16, 20))


# ----------------------------------------------------------------- latency
def test_measure_latency_counts_and_times():
    calls = []

    def work():
        calls.append(1)
        time.sleep(0.002)

    stats = measure_latency(work, warmup=2, repeats=4, sync_cuda=True)
    assert len(calls) == 6
    assert len(stats['all']) == 4
    assert stats['min'] >= 0.002
    assert stats['min'] <= stats['median'] <= max(stats['all'])
    assert stats['mean'] == pytest.approx(sum(stats['all']) / 4)
    assert stats['std'] >= 0
    with pytest.raises(ValueError, match='repeats'):
        measure_latency(work, repeats=0)


def test_segmentor_latency_restores_mode():
    model = HandModel().train()
    stats = segmentor_latency(model, SHAPE, warmup=1, repeats=3)
    assert model.training
    assert len(stats['all']) == 3 and stats['min'] > 0
    assert stats['input_shape'] == SHAPE and stats['device'] == 'cpu'


# -------------------------------------------------------------------- hook
def fake_runner(model, name):
    return SimpleNamespace(
        model=model, hooks=[],
        logger=MMLogger.get_instance(f'complexity_{name}'),
        message_hub=MessageHub.get_instance(f'complexity_{name}'))


def test_hook_adds_keys_and_recomputes():
    hook = HOOKS.build(dict(type='ModelComplexityHook', input_shape=SHAPE))
    assert isinstance(hook, ModelComplexityHook)
    runner = fake_runner(HandModel(16), 'recompute')
    hook.before_test(runner)
    metrics = {'mIoU': 50.0}
    hook.after_test_epoch(runner, metrics)
    assert metrics['gflops'] == pytest.approx(hand_flops(16) / 1e9)
    assert metrics['params_m'] == pytest.approx(hand_params(16) / 1e6)
    assert metrics['flops_input'] == '3x16x20'
    hub = runner.message_hub
    assert hub.get_scalar('test/gflops').current() == metrics['gflops']
    assert hub.get_info('test/flops_input') == '3x16x20'
    runner.model = HandModel(8)  # "pruned" between evaluations
    hook.before_test(runner)
    metrics = {}
    hook.after_test_epoch(runner, metrics)
    assert metrics['gflops'] == pytest.approx(hand_flops(8) / 1e9)
    # on_val=False: validation is left alone.
    metrics = {}
    hook.before_val(runner)
    hook.after_val_epoch(runner, metrics)
    assert metrics == {}


class Broken(nn.Module):

    def forward(self, x):
        raise RuntimeError('cannot trace me')


def test_hook_failure_warns_and_adds_nothing():
    hook = ModelComplexityHook(input_shape=SHAPE)
    runner = fake_runner(HandModel(), 'failure')
    hook.before_test(runner)
    runner.model = Broken()
    warnings = []
    runner.logger = SimpleNamespace(warning=warnings.append,
                                    info=lambda msg: None)
    hook.before_test(runner)
    metrics = {'mIoU': 1.0}
    hook.after_test_epoch(runner, metrics)
    assert metrics == {'mIoU': 1.0}  # no stale values from the first model
    assert len(warnings) == 1 and 'cannot trace me' in warnings[0]


class CountMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(1 for _ in data_samples)

    def compute_metrics(self, results):
        return dict(count=float(len(results)))


@pytest.mark.parametrize('priority', ['NORMAL', 'HIGHEST'])
def test_hook_in_runner_reaches_log_and_json(tmp_path, priority):
    """NORMAL runs after RuntimeInfoHook, HIGHEST before it: both work."""
    from mmengine.runner import Runner
    data = [dict(inputs=torch.rand(*SHAPE), data_samples=i) for i in range(3)]
    loader = dict(dataset=data, batch_size=2, collate_fn=lambda x: dict(
        inputs=[d['inputs'] for d in x],
        data_samples=[d['data_samples'] for d in x]))
    runner = Runner(
        model=HandModel(),
        work_dir=str(tmp_path),
        test_dataloader=torch.utils.data.DataLoader(**loader),
        test_evaluator=[CountMetric()],
        test_cfg=dict(),
        val_dataloader=torch.utils.data.DataLoader(**loader),
        val_evaluator=[CountMetric()],
        val_cfg=dict(),
        custom_hooks=[dict(type='ModelComplexityHook', input_shape=SHAPE,
                           on_val=True, priority=priority)],
        default_scope='mmseg',
        experiment_name=f'complexity_hook_test_{priority}')
    metrics = runner.test()
    expected = dict(count=3.0, gflops=hand_flops() / 1e9,
                    params_m=hand_params() / 1e6, flops_input='3x16x20')
    assert metrics == pytest.approx(expected)
    # LoggerHook's test JSON (in the log dir, not vis_data).
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.json')) as f:
        written = json.load(f)
    for key, value in expected.items():
        assert written[key] == pytest.approx(value)
    val_metrics = runner.val()
    assert val_metrics == pytest.approx(expected)
    # Validation scalars JSON: numbers only (mmengine drops strings there).
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        last = json.loads(f.read().strip().splitlines()[-1])
    assert last['gflops'] == pytest.approx(expected['gflops'])
    assert last['params_m'] == pytest.approx(expected['params_m'])
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    assert 'Model complexity: GFLOPs' in log
    assert 'flops_input: 3x16x20' in log
