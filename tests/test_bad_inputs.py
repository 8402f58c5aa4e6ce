"""Bad inputs that used to crash deep inside a library now name the file or key."""
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmseg.registry import DATASETS

import npdg  # noqa: F401
from npdg.datasets import GTA5Dataset, MultiTargetDataset
from npdg.datasets.sample_errors import DataSampleError
from npdg.evaluation import MultiTargetIoUMetric

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='CheckSegSample', num_classes=19), dict(type='PackSegInputs')]


@pytest.fixture(autouse=True)
def mmseg_scope():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def make_cityscapes(root, num=2, size=(8, 12), label=None):
    """A tiny Cityscapes val layout (train-id labels unless ``label`` says otherwise)."""
    h, w = size
    img_dir, seg_dir = root / 'leftImg8bit' / 'val' / 'city', root / 'gtFine' / 'val' / 'city'
    img_dir.mkdir(parents=True, exist_ok=True)
    seg_dir.mkdir(parents=True, exist_ok=True)
    for i in range(num):
        cv2.imwrite(str(img_dir / f'city_{i:06d}_000019_leftImg8bit.png'),
                    np.full((h, w, 3), 10 * i, np.uint8))
        cv2.imwrite(str(seg_dir / f'city_{i:06d}_000019_gtFine_labelIds.png'),
                    np.full((h, w), 7, np.uint8))
        if label != 'raw_only':
            cv2.imwrite(str(seg_dir / f'city_{i:06d}_000019_gtFine_labelTrainIds.png'),
                        np.full((h, w), 1, np.uint8))
    return dict(type='CityscapesDataset', data_root=str(root),
                data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                pipeline=PIPELINE)


def label_path(root, i=0):
    return root / 'gtFine' / 'val' / 'city' / f'city_{i:06d}_000019_gtFine_labelTrainIds.png'


def test_three_channel_target_label_names_the_file_and_the_fix(tmp_path):
    cfg = make_cityscapes(tmp_path / 'cs')
    cv2.imwrite(str(label_path(tmp_path / 'cs', 1)), np.ones((8, 12, 3), np.uint8))
    ds = MultiTargetDataset(datasets=dict(cityscapes=cfg))
    ds[0]  # the good one loads
    with pytest.raises(ValueError, match=r'3 channels.*city_000001_000019_gtFine_labelTrainIds'
                                         r'.*single-channel'):
        ds[1]


def test_three_channel_training_label_names_the_file(tmp_path):
    root = tmp_path / 'gta'
    for name in ('00001', '00002'):
        (root / 'images').mkdir(parents=True, exist_ok=True)
        (root / 'labels').mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / 'images' / f'{name}.png'), np.zeros((4, 6, 3), np.uint8))
        cv2.imwrite(str(root / 'labels' / f'{name}_labelTrainIds.png'),
                    np.ones((4, 6, 3) if name == '00002' else (4, 6), np.uint8))
    ds = GTA5Dataset(data_root=str(root), pipeline=PIPELINE)
    idx = [osp.basename(ds.get_data_info(i)['img_path']) for i in range(2)].index('00002.png')
    with pytest.raises(ValueError, match=r'00002_labelTrainIds\.png.*single-channel'):
        ds[idx]


def test_truncated_label_png_names_the_file(tmp_path):
    cfg = make_cityscapes(tmp_path / 'cs', size=(64, 96))
    path = label_path(tmp_path / 'cs', 0)
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 19, (64, 96)).astype(np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # cut in the middle of the image data
    ds = MultiTargetDataset(datasets=dict(cityscapes=cfg))
    with pytest.raises(DataSampleError, match=r'city_000000_000019_gtFine_labelTrainIds\.png'
                                              r".*target 'cityscapes'.*truncated or corrupt"):
        ds[0]


def test_unconverted_cityscapes_labels_fail_at_build(tmp_path):
    """Only *_labelIds.png: found when the val/test dataset is built, not at evaluation."""
    cfg = make_cityscapes(tmp_path / 'cs', label='raw_only')
    with pytest.raises(FileNotFoundError, match=r"2 of 2 label files are missing.*"
                                                r"labelTrainIds.*dataset_converters/cityscapes\.py"):
        MultiTargetDataset(datasets=dict(cityscapes=cfg))


def test_unconverted_target_stops_training_before_the_first_iteration(workspace, tmp_path):
    """tools/train.py checks the val and test datasets at start-up (not after training)."""
    bad = tmp_path / 'cs_raw'
    make_cityscapes(bad, label='raw_only')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'),
         osp.join(ROOT, 'configs', 'demo', 'deeplab_r18_synthetic.py'),
         '--work-dir', str(tmp_path / 'w'), '--cfg-options', 'max_iters=2',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
         'val_dataloader.num_workers=0', 'batch_size=2',
         f'test_dataloader.dataset.datasets.cityscapes.data_root={bad}'],
        cwd=workspace, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'labelTrainIds' in proc.stderr and 'dataset_converters/cityscapes.py' in proc.stderr
    assert 'test_dataloader.dataset' in proc.stderr
    assert 'Iter(train)' not in proc.stdout + proc.stderr


def test_misspelt_evaluator_target_fails_when_the_loop_is_built(tmp_path):
    ds = MultiTargetDataset(datasets=dict(cityscapes=make_cityscapes(tmp_path / 'a'),
                                          bdd100k=make_cityscapes(tmp_path / 'b')))
    metric = MultiTargetIoUMetric(targets=['cityscapes', 'bdd'])
    with pytest.raises(ValueError, match=r"\['bdd'\].*targets.*'bdd' -> 'bdd100k'"):
        metric.dataset_meta = ds.metainfo  # what ValLoop/TestLoop do when built


def test_misspelt_evaluator_target_in_test_tool(npdg_demo_run, workspace):
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'test.py'),
         osp.join(ROOT, 'configs', 'demo', 'deeplab_r18_synthetic.py'),
         str(npdg_demo_run / 'iter_3.pth'), '--work-dir', str(workspace / 'w_typo'),
         '--cfg-options', 'test_dataloader.num_workers=0',
         'test_evaluator.targets=[cityscapes,bdd100k,mapilary]'],
        cwd=workspace, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "'mapilary' -> 'mapillary'" in proc.stderr
    assert 'per class results' not in proc.stdout + proc.stderr  # nothing was evaluated


def test_metric_saves_predictions_per_target(tmp_path):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    metric = MultiTargetIoUMetric(targets=['a'], output_dir=str(tmp_path / 'out'),
                                  keep_results=True)
    metric.dataset_meta = dict(classes=[f'c{i}' for i in range(3)], dg_targets=['a'])
    sample = SegDataSample(metainfo=dict(img_path='/x/frame_1.jpg', dg_target='a'))
    pred = torch.tensor([[0, 1], [2, 1]])
    sample.pred_sem_seg = PixelData(data=pred[None])
    sample.gt_sem_seg = PixelData(data=pred[None])
    metric.process({}, [sample.to_dict()])
    saved = cv2.imread(str(tmp_path / 'out' / 'a' / 'frame_1.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(saved, pred.numpy())
    assert metric.compute_metrics(metric.results)['a/mIoU'] == 100.0
    with pytest.raises(ValueError, match='output_dir'):
        MultiTargetIoUMetric(format_only=True)


def test_dataset_pipeline_override_reaches_every_target(tmp_path):
    """What --tta does: test_dataloader.dataset.pipeline = tta_pipeline."""
    ds = DATASETS.build(dict(
        type='MultiTargetDataset', pipeline=[dict(type='LoadImageFromFile'),
                                             dict(type='PackSegInputs')],
        datasets=dict(a=make_cityscapes(tmp_path / 'a'), b=make_cityscapes(tmp_path / 'b'))))
    for i in range(len(ds)):  # no LoadAnnotations: the override was used
        assert 'gt_sem_seg' not in ds[i]['data_samples']
