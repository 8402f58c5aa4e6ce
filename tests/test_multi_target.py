"""MultiTargetDataset and MultiTargetIoUMetric against hand computations."""
import os
import pickle
import socket

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import DATASETS, METRICS
from mmseg.structures import SegDataSample

import npdg  # noqa: F401  (registers npdg's modules; must precede mmseg)
from npdg.datasets import MultiTargetDataset
from npdg.evaluation import MultiTargetIoUMetric

NUM_CLASSES = 5
CLASSES = tuple(f'c{i}' for i in range(NUM_CLASSES))
# Each target has its own image size; bdd100k never has class 4 (NaN IoU).
SIZES = {'cityscapes': (12, 20), 'bdd100k': (9, 16), 'mapillary': (15, 11)}
CLASSES_PRESENT = {'cityscapes': 5, 'bdd100k': 4, 'mapillary': 5}
TARGETS = ['cityscapes', 'bdd100k', 'mapillary']


# ----------------------------------------------------------------- helpers
def make_arrays(seed=0, per_target=4, ignore_index=255):
    """Random (target, pred, label) triples in a mixed target order."""
    rng = np.random.default_rng(seed)
    order = [t for t in TARGETS for _ in range(per_target)]
    order = [order[i] for i in rng.permutation(len(order))]
    out = []
    for target in order:
        h, w = SIZES[target]
        k = CLASSES_PRESENT[target]
        label = rng.integers(0, k, (h, w))
        pred = np.where(rng.random((h, w)) < 0.6, label,
                        rng.integers(0, k, (h, w)))
        label = np.where(rng.random((h, w)) < 0.15, ignore_index, label)
        out.append((target, pred, label))
    return out


def to_sample(target, pred, label, idx=0):
    """A prediction as the model returns it, converted like the Evaluator."""
    # The path names another target: a path-substring metric would misfile it.
    meta = dict(img_path=f'/data/mapillary_like/{idx}.png')
    if target is not None:
        meta['dg_target'] = target
    sample = SegDataSample(metainfo=meta)
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred)[None].long())
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(label)[None].long())
    return sample.to_dict()


def reference(arrays, ignore_index=255, order=TARGETS):
    """Hand computation in numpy (float64), unrounded percent."""
    areas = {}
    for target, pred, label in arrays:
        keep = label != ignore_index
        p, g = pred[keep], label[keep]
        inter = np.bincount(p[p == g], minlength=NUM_CLASSES)[:NUM_CLASSES]
        area_p = np.bincount(p, minlength=NUM_CLASSES)[:NUM_CLASSES]
        area_g = np.bincount(g, minlength=NUM_CLASSES)[:NUM_CLASSES]
        acc = areas.setdefault(target, np.zeros((3, NUM_CLASSES)))
        acc += np.stack([inter, area_p, area_g])
    out = {}
    with np.errstate(invalid='ignore', divide='ignore'):
        for target in order:
            inter, area_p, area_g = areas[target]
            union = area_p + area_g - inter
            out[f'{target}/aAcc'] = inter.sum() / area_g.sum() * 100
            out[f'{target}/mIoU'] = np.nanmean(inter / union) * 100
            out[f'{target}/mAcc'] = np.nanmean(inter / area_g) * 100
            out[f'{target}/mDice'] = np.nanmean(
                2 * inter / (area_p + area_g)) * 100
    for key in ('aAcc', 'mIoU', 'mAcc', 'mDice'):
        out[key] = np.mean([out[f'{t}/{key}'] for t in order])
    return out


def run_metric(metric, samples, batch_size):
    """Feed samples in batches and compute (no distribution)."""
    metric.dataset_meta = dict(classes=CLASSES)
    for i in range(0, len(samples), batch_size):
        metric.process({}, samples[i:i + batch_size])
    return metric.evaluate(len(samples))


def assert_matches_reference(metrics, ref, keys):
    for key in keys:
        # mmseg sums float32 histograms, rounds to 2 decimals.
        assert abs(metrics[key] - ref[key]) <= 0.0051, (key, metrics[key],
                                                        ref[key])


# ------------------------------------------------------------------ metric
def test_metric_matches_hand_computation_at_batch_1_and_3():
    arrays = make_arrays()
    samples = [to_sample(t, p, g, i) for i, (t, p, g) in enumerate(arrays)]
    results = {}
    for bs in (1, 3):
        metric = METRICS.build(dict(type='MultiTargetIoUMetric',
                                    targets=TARGETS,
                                    iou_metrics=['mIoU', 'mDice']))
        results[bs] = run_metric(metric, samples, bs)
    assert results[1] == results[3]
    ref = reference(arrays)
    expected_keys = {f'{t}/{k}' for t in TARGETS
                     for k in ('aAcc', 'mIoU', 'mAcc', 'mDice')}
    expected_keys |= {'aAcc', 'mIoU', 'mAcc', 'mDice'}
    assert set(results[1]) == expected_keys
    assert_matches_reference(results[1], ref, expected_keys)
    # bdd100k has no class 4 at all: its mIoU averages 4 classes, not 5.
    assert not np.isnan(results[1]['bdd100k/mIoU'])
    # The overall mIoU is the mean of the three target mIoUs.
    per_target = [results[1][f'{t}/mIoU'] for t in TARGETS]
    assert abs(results[1]['mIoU'] - np.mean(per_target)) <= 0.01


def test_metric_without_target_key_equals_mmseg_iou_metric():
    arrays = make_arrays(seed=1)
    samples = [to_sample(None, p, g) for _, p, g in arrays]
    metrics = run_metric(MultiTargetIoUMetric(), samples, 2)
    mmseg_metric = IoUMetric()
    mmseg_metric.dataset_meta = dict(classes=CLASSES)
    mmseg_metric.process({}, samples)
    expected = mmseg_metric.evaluate(len(samples))
    assert set(metrics) == {'default/aAcc', 'default/mIoU', 'default/mAcc',
                            'aAcc', 'mIoU', 'mAcc'}
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert metrics[key] == pytest.approx(float(expected[key]), abs=1e-4)
        assert metrics[f'default/{key}'] == metrics[key]
    ref = reference([('default', p, g) for _, p, g in arrays],
                    order=['default'])
    assert_matches_reference(metrics, ref, ['mIoU', 'aAcc', 'mAcc'])


def test_metric_target_order_and_first_appearance():
    arrays = make_arrays(seed=2)
    samples = [to_sample(t, p, g) for t, p, g in arrays]
    ordered = run_metric(
        MultiTargetIoUMetric(targets=['mapillary', 'cityscapes', 'bdd100k']),
        samples, 1)
    assert list(ordered)[:3] == ['mapillary/aAcc', 'mapillary/mIoU',
                                 'mapillary/mAcc']
    found = run_metric(MultiTargetIoUMetric(), samples, 1)
    first = list(dict.fromkeys(t for t, _, _ in arrays))
    assert [k.split('/')[0] for k in list(found)[::3][:3]] == first
    assert {k: found[k] for k in ordered} == ordered


def test_metric_unknown_target_raises():
    arrays = make_arrays(seed=3)
    samples = [to_sample(t, p, g) for t, p, g in arrays]
    metric = MultiTargetIoUMetric(targets=['cityscapes', 'bdd100k'])
    metric.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(ValueError, match="'mapillary', which is not in"):
        metric.process({}, samples)


def test_metric_missing_target_raises():
    arrays = [a for a in make_arrays(seed=4) if a[0] != 'bdd100k']
    samples = [to_sample(t, p, g) for t, p, g in arrays]
    metric = MultiTargetIoUMetric(targets=TARGETS)
    with pytest.raises(ValueError, match=r"no samples of target\(s\) "
                       r"\['bdd100k'\]"):
        run_metric(metric, samples, 2)


def test_metric_ignore_index():
    arrays = make_arrays(seed=5)
    samples = [to_sample(t, p, g) for t, p, g in arrays]
    base = run_metric(MultiTargetIoUMetric(targets=TARGETS), samples, 3)
    # Predictions on ignored pixels must not matter.
    changed = [(t, np.where(g == 255, 3, p), g) for t, p, g in arrays]
    samples2 = [to_sample(t, p, g) for t, p, g in changed]
    assert run_metric(MultiTargetIoUMetric(targets=TARGETS), samples2,
                      3) == base
    # Another ignore index: class 0 ignored, 255 becomes a class outside
    # the histogram range (counted in no class, like mmseg).
    zero_ignored = [(t, p, np.where(g == 255, 1, g)) for t, p, g in arrays]
    samples3 = [to_sample(t, p, g) for t, p, g in zero_ignored]
    got = run_metric(
        MultiTargetIoUMetric(targets=TARGETS, ignore_index=0), samples3, 3)
    ref = reference(zero_ignored, ignore_index=0)
    assert_matches_reference(got, ref, ['mIoU', 'aAcc', 'mAcc'] + [
        f'{t}/mIoU' for t in TARGETS])
    assert got['mIoU'] != base['mIoU']


def test_metric_rejects_unknown_arguments():
    with pytest.raises(TypeError, match='output_dri'):
        MultiTargetIoUMetric(output_dri='x')
    with pytest.raises(KeyError, match='mBogus'):
        MultiTargetIoUMetric(iou_metrics=['mBogus'])


# ------------------------------------------------------- two gloo "ranks"
def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _dist_worker(rank, world_size, port, out_dir):
    import torch.distributed as dist
    os.chdir(out_dir)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size)
    try:
        arrays = make_arrays(seed=6, per_target=3)
        samples = [to_sample(t, p, g) for t, p, g in arrays]
        n = len(samples)
        # DefaultSampler(shuffle=False): pad by repeating the start, then
        # interleave ranks; the collection drops the padding.
        padded = list(range(n)) + list(range(n))[:(-n) % world_size]
        mine = [samples[i] for i in padded[rank::world_size]]
        metric = MultiTargetIoUMetric(
            targets=TARGETS, collect_dir=os.path.join(out_dir, 'collect'))
        metric.dataset_meta = dict(classes=CLASSES)
        for i in range(0, len(mine), 2):
            metric.process({}, mine[i:i + 2])
        result = metric.evaluate(n)
        with open(os.path.join(out_dir, f'rank{rank}.pkl'), 'wb') as f:
            pickle.dump(result, f)
    finally:
        dist.destroy_process_group()


def test_metric_two_gloo_ranks_equal_single_process(tmp_path):
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip('torch.distributed gloo backend is not available')
    arrays = make_arrays(seed=6, per_target=3)
    assert len(arrays) % 2 == 1  # exercises the sampler padding
    samples = [to_sample(t, p, g) for t, p, g in arrays]
    single = run_metric(MultiTargetIoUMetric(targets=TARGETS), samples, 1)
    torch.multiprocessing.spawn(
        _dist_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
        join=True)
    for rank in (0, 1):
        with open(tmp_path / f'rank{rank}.pkl', 'rb') as f:
            assert pickle.load(f) == single


# ----------------------------------------------------------------- dataset
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')]


def make_cityscapes(root, num, size, value):
    """A tiny Cityscapes val layout: num frames of size, label = value."""
    h, w = size
    for i in range(num):
        img_dir = root / 'leftImg8bit' / 'val' / 'city'
        seg_dir = root / 'gtFine' / 'val' / 'city'
        img_dir.mkdir(parents=True, exist_ok=True)
        seg_dir.mkdir(parents=True, exist_ok=True)
        img = np.full((h, w, 3), 10 * i, np.uint8)
        cv2.imwrite(str(img_dir / f'city_{i:06d}_000019_leftImg8bit.png'), img)
        seg = np.full((h, w), value, np.uint8)
        seg[0, 0] = 255
        cv2.imwrite(
            str(seg_dir / f'city_{i:06d}_000019_gtFine_labelTrainIds.png'),
            seg)
    return dict(type='CityscapesDataset', data_root=str(root),
                data_prefix=dict(img_path='leftImg8bit/val',
                                 seg_map_path='gtFine/val'),
                pipeline=PIPELINE)


@pytest.fixture
def two_targets(tmp_path):
    return dict(
        first=make_cityscapes(tmp_path / 'a', 2, (8, 12), 1),
        second=make_cityscapes(tmp_path / 'b', 3, (10, 6), 2))


def test_dataset_stamps_target_and_lengths(two_targets):
    ds = DATASETS.build(dict(type='MultiTargetDataset',
                             datasets=two_targets))
    assert isinstance(ds, MultiTargetDataset)
    assert ds.target_names == ['first', 'second']
    assert dict(ds.target_lengths) == {'first': 2, 'second': 3}
    assert ds.target_length('second') == 3
    assert len(ds) == 5
    expected = ['first'] * 2 + ['second'] * 3
    for idx, name in enumerate(expected):
        item = ds[idx]
        sample = item['data_samples']
        assert sample.metainfo['dg_target'] == name
        assert ds.target_of(idx) == name
        assert ds.get_data_info(idx)['dg_target'] == name
        # The sample really is the sub-dataset's: size and label value.
        h, w = (8, 12) if name == 'first' else (10, 6)
        assert tuple(item['inputs'].shape) == (3, h, w)
        gt = sample.gt_sem_seg.data
        assert int(gt[0, 1, 1]) == (1 if name == 'first' else 2)
    assert ds.metainfo['classes'][0] == 'road'


def test_dataset_list_form_and_name_errors(two_targets):
    ds = MultiTargetDataset(datasets=list(two_targets.values()),
                            names=['x', 'y'])
    assert ds.target_names == ['x', 'y'] and len(ds) == 5
    with pytest.raises(ValueError, match='need names'):
        MultiTargetDataset(datasets=list(two_targets.values()))
    with pytest.raises(ValueError, match="without '/'"):
        MultiTargetDataset(datasets={'a/b': two_targets['first']})


def test_dataset_empty_target_raises(tmp_path, two_targets):
    (tmp_path / 'empty' / 'leftImg8bit' / 'val').mkdir(parents=True)
    (tmp_path / 'empty' / 'gtFine' / 'val').mkdir(parents=True)
    empty = dict(two_targets['first'], data_root=str(tmp_path / 'empty'))
    cfg = dict(type='MultiTargetDataset',
               datasets=dict(first=two_targets['first'], bdd=empty))
    with pytest.raises(ValueError) as err:
        DATASETS.build(cfg)
    msg = str(err.value)
    assert "'bdd'" in msg and 'no samples' in msg
    assert str(tmp_path / 'empty') in msg and 'leftImg8bit/val' in msg
    assert 'converter' in msg
    lazy = DATASETS.build(dict(cfg, lazy_init=True))  # no error yet
    with pytest.raises(ValueError, match="'bdd'.*no samples"):
        lazy.full_init()


def test_dataset_missing_folder_names_target(tmp_path, two_targets):
    missing = dict(two_targets['first'], data_root=str(tmp_path / 'none'))
    with pytest.raises(FileNotFoundError, match="target 'map'"):
        MultiTargetDataset(datasets=dict(first=two_targets['first'],
                                         map=missing))


def test_dataset_classes_mismatch_raises(two_targets):
    other = dict(two_targets['second'],
                 metainfo=dict(classes=('road', 'sidewalk')))
    with pytest.raises(ValueError) as err:
        MultiTargetDataset(datasets=dict(first=two_targets['first'],
                                         other=other))
    msg = str(err.value)
    assert "'classes'" in msg and "'other'" in msg and "'first'" in msg


def test_target_survives_model_val_step_into_metric(two_targets):
    """Packed sample -> segmentor.val_step -> Evaluator: dg_target kept."""
    from mmengine.config import ConfigDict
    from mmengine.dataset import pseudo_collate
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    ds = MultiTargetDataset(datasets=two_targets)
    model = MODELS.build(ConfigDict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0],
                               std=[1, 1, 1]),
        backbone=dict(type='ResNetV1c', depth=18, init_cfg=None,
                      norm_cfg=dict(type='BN')),
        decode_head=dict(type='FCNHead', in_channels=512, in_index=3,
                         channels=8, num_convs=1, num_classes=19,
                         norm_cfg=dict(type='BN')),
        test_cfg=dict(mode='whole'))).eval()
    evaluator = Evaluator(MultiTargetIoUMetric(targets=['first', 'second']))
    evaluator.dataset_meta = ds.metainfo
    for idx in range(len(ds)):  # batch 1: the two targets differ in size
        batch = pseudo_collate([ds[idx]])
        with torch.no_grad():
            outputs = model.val_step(batch)
        assert outputs[0].metainfo['dg_target'] == ds.target_of(idx)
        evaluator.process(outputs, batch)
    metrics = evaluator.evaluate(len(ds))
    assert {'first/mIoU', 'second/mIoU', 'mIoU'} <= set(metrics)
