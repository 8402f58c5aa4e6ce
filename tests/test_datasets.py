"""Dataset classes and CheckSegSample on hand-made layouts."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmseg.registry import DATASETS, TRANSFORMS
from PIL import Image

import npdg  # noqa: F401  (before mmseg)
import npdg.datasets.gta as gta_module
from npdg.datasets import CheckSegSample, GTA5Dataset, Mapillary19Dataset
from npdg.datasets.label_maps import mapillary_mapping_record


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Build pipelines in the mmseg scope, as configs with
    ``default_scope='mmseg'`` do."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='CheckSegSample'), dict(type='PackSegInputs')]


def save_rgb(path, h, w, ext_format=None):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(
        path, format=ext_format)


def save_gray(path, ids):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(ids, np.uint8), mode='L').save(path)


TRAIN_IDS = np.array([[0, 1, 18], [255, 5, 13]], np.uint8)


# ---------------------------------------------------------------- GTA5 ----
def make_gta(root, names=('00001', '00002', '00003')):
    for name in names:
        save_rgb(f'{root}/images/{name}.png', 2, 3)
        save_gray(f'{root}/labels/{name}.png', np.full((2, 3), 7))
        save_gray(f'{root}/labels/{name}_labelTrainIds.png', TRAIN_IDS)
    return root


def names_of(dataset):
    return [osp.basename(dataset.get_data_info(i)['img_path'])
            for i in range(len(dataset))]


def test_gta_lists_frames_and_loads_samples(tmp_path):
    root = make_gta(str(tmp_path / 'gta'))
    ds = GTA5Dataset(data_root=root, pipeline=PIPELINE)
    assert names_of(ds) == ['00001.png', '00002.png', '00003.png']
    info = ds.get_data_info(1)
    assert info['seg_map_path'] == f'{root}/labels/00002_labelTrainIds.png'
    sample = ds[0]
    np.testing.assert_array_equal(
        sample['data_samples'].gt_sem_seg.data.numpy()[0], TRAIN_IDS)
    assert ds.metainfo['classes'][18] == 'bicycle'


def test_gta_registry_build_and_lazy_init(tmp_path):
    ds = DATASETS.build(dict(type='GTA5Dataset',
                             data_root=str(tmp_path / 'absent'),
                             lazy_init=True))
    assert len(ds.metainfo['classes']) == 19
    with pytest.raises(FileNotFoundError, match='absent/images'):
        ds.full_init()


def test_gta_split_file_and_skip_list(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(gta_module, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    root = make_gta(str(tmp_path / 'gta'),
                    names=('00001', '00002', '00003', '00004'))
    with open(f'{root}/split.txt', 'w') as f:
        f.write('00001\n00003.png\n00004\n')
    with open(f'{root}/skipped_frames.txt', 'w') as f:
        f.write('# comment\n00004\tsize mismatch: image 3x2, label 3x3\n'
                '00009\timage without label\n')
    ds = GTA5Dataset(data_root=root, split_file='split.txt')
    assert names_of(ds) == ['00001.png', '00003.png']
    assert len(logged) == 1
    assert '1 frame(s)' in logged[0] and 'skipped_frames.txt' in logged[0]
    logged.clear()
    ds = GTA5Dataset(data_root=root, skip_list=None)
    assert len(ds) == 4 and logged == []
    ds = GTA5Dataset(data_root=root, split_file=f'{root}/split.txt',
                     skip_list=None)
    assert names_of(ds) == ['00001.png', '00003.png', '00004.png']
    ds = GTA5Dataset(split_file=f'{root}/split.txt',
                     data_prefix=dict(img_path=f'{root}/images',
                                      seg_map_path=f'{root}/labels'))
    assert names_of(ds) == ['00001.png', '00003.png']
    with pytest.raises(FileNotFoundError, match='nosplit.txt'):
        GTA5Dataset(data_root=root, split_file='nosplit.txt')


def test_gta_skipped_frame_without_label_is_not_an_error(tmp_path):
    root = make_gta(str(tmp_path / 'gta'))
    os.remove(f'{root}/labels/00002_labelTrainIds.png')
    with open(f'{root}/skipped_frames.txt', 'w') as f:
        f.write('00002\tsize mismatch: image 3x2, label 3x3\n')
    assert names_of(GTA5Dataset(data_root=root)) == ['00001.png', '00003.png']


def test_gta_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere/images'):
        GTA5Dataset(data_root=str(tmp_path / 'nowhere'))
    root = make_gta(str(tmp_path / 'gta'))
    os.remove(f'{root}/labels/00003_labelTrainIds.png')
    with pytest.raises(FileNotFoundError) as err:
        GTA5Dataset(data_root=root)
    message = str(err.value)
    assert 'labels/00003_labelTrainIds.png' in message
    assert f'python tools/dataset_converters/gta.py {root}' in message
    with open(f'{root}/split.txt', 'w') as f:
        f.write('99999\n')
    with pytest.raises(ValueError, match='Empty dataset.*split.txt'):
        GTA5Dataset(data_root=root, split_file='split.txt')
    empty = str(tmp_path / 'empty')
    os.makedirs(f'{empty}/images')
    os.makedirs(f'{empty}/labels')
    with pytest.raises(ValueError, match='Empty dataset.*empty/images'):
        GTA5Dataset(data_root=empty)
    os.rmdir(f'{empty}/labels')
    with pytest.raises(FileNotFoundError, match='empty/labels.*gta.py'):
        GTA5Dataset(data_root=empty)


# ------------------------------------------------------------ Mapillary ----
def make_mapillary(root, mapping='narrow', split='validation'):
    for name in ('a', 'b'):
        save_rgb(f'{root}/{split}/images/{name}.jpg', 2, 3, 'JPEG')
        save_gray(f'{root}/{split}/labels_cs19_{mapping}/{name}.png',
                  TRAIN_IDS)
    with open(f'{root}/{split}/labels_cs19_{mapping}/mapping.json', 'w') as f:
        json.dump(mapillary_mapping_record(mapping), f)
    return root


def test_mapillary_default_layout(tmp_path):
    root = make_mapillary(str(tmp_path / 'mapillary'))
    ds = Mapillary19Dataset(data_root=root, pipeline=PIPELINE)
    assert names_of(ds) == ['a.jpg', 'b.jpg']
    assert ds.get_data_info(0)['seg_map_path'] == \
        f'{root}/validation/labels_cs19_narrow/a.png'
    np.testing.assert_array_equal(
        ds[1]['data_samples'].gt_sem_seg.data.numpy()[0], TRAIN_IDS)


def test_mapillary_wide_and_other_split(tmp_path):
    root = make_mapillary(str(tmp_path / 'mapillary'), 'wide', 'training')
    ds = DATASETS.build(dict(
        type='Mapillary19Dataset', mapping='wide', data_root=root,
        data_prefix=dict(img_path='training/images')))
    assert ds.get_data_info(1)['seg_map_path'] == \
        f'{root}/training/labels_cs19_wide/b.png'


def test_mapillary_mapping_mismatch_and_absent(tmp_path):
    root = make_mapillary(str(tmp_path / 'mapillary'))
    label_dir = f'{root}/validation/labels_cs19_narrow'
    with open(f'{label_dir}/mapping.json', 'w') as f:
        json.dump(mapillary_mapping_record('wide'), f)
    with pytest.raises(ValueError) as err:
        Mapillary19Dataset(data_root=root)
    assert "records mapping 'wide'" in str(err.value)
    assert 'labels_cs19_narrow/mapping.json' in str(err.value)
    os.remove(f'{label_dir}/mapping.json')
    with pytest.raises(FileNotFoundError) as err:
        Mapillary19Dataset(data_root=root)
    assert 'mapping.json' in str(err.value)
    assert (f'python tools/dataset_converters/mapillary.py {root} '
            '--mapping narrow --splits validation') in str(err.value)
    with pytest.raises(FileNotFoundError, match='labels_cs19_wide'):
        Mapillary19Dataset(data_root=root, mapping='wide')
    with pytest.raises(ValueError, match='medium'):
        Mapillary19Dataset(data_root=root, mapping='medium', lazy_init=True)


def test_mapillary_stale_table_missing_label_empty(tmp_path):
    root = make_mapillary(str(tmp_path / 'mapillary'))
    label_dir = f'{root}/validation/labels_cs19_narrow'
    record = mapillary_mapping_record('narrow')
    record['table'][41]['train_id'] = 255
    with open(f'{label_dir}/mapping.json', 'w') as f:
        json.dump(record, f)
    with pytest.raises(ValueError, match='different .narrow. table'):
        Mapillary19Dataset(data_root=root)
    with open(f'{label_dir}/mapping.json', 'w') as f:
        json.dump(mapillary_mapping_record('narrow'), f)
    os.remove(f'{label_dir}/b.png')
    with pytest.raises(FileNotFoundError, match='labels_cs19_narrow/b.png'):
        Mapillary19Dataset(data_root=root)
    for name in ('a', 'b'):
        os.remove(f'{root}/validation/images/{name}.jpg')
    with pytest.raises(ValueError, match='Empty dataset'):
        Mapillary19Dataset(data_root=root)
    with pytest.raises(FileNotFoundError, match='nowhere/validation/images'):
        Mapillary19Dataset(data_root=str(tmp_path / 'nowhere'))


# ------------------------------------- mmseg's own Cityscapes / BDD100K ----
def test_mmseg_cityscapes_and_bdd_load_tiny_layouts(tmp_path):
    from mmengine.dataset import ConcatDataset
    cs = str(tmp_path / 'cityscapes')
    stem = 'frankfurt_000000_000294'
    save_rgb(f'{cs}/leftImg8bit/val/frankfurt/{stem}_leftImg8bit.png', 2, 3)
    save_gray(f'{cs}/gtFine/val/frankfurt/{stem}_gtFine_labelTrainIds.png',
              TRAIN_IDS)
    save_gray(f'{cs}/gtFine/val/frankfurt/{stem}_gtFine_labelIds.png',
              np.full((2, 3), 7))
    bdd = str(tmp_path / 'bdd100k')
    save_rgb(f'{bdd}/images/10k/val/7d2f7975-e0c1c5a7.jpg', 2, 3, 'JPEG')
    save_gray(f'{bdd}/labels/sem_seg/masks/val/7d2f7975-e0c1c5a7.png',
              TRAIN_IDS)
    cs_ds = DATASETS.build(dict(
        type='CityscapesDataset', data_root=cs, pipeline=PIPELINE,
        data_prefix=dict(img_path='leftImg8bit/val',
                         seg_map_path='gtFine/val')))
    bdd_ds = DATASETS.build(dict(
        type='BDD100KDataset', data_root=bdd, pipeline=PIPELINE,
        data_prefix=dict(img_path='images/10k/val',
                         seg_map_path='labels/sem_seg/masks/val')))
    assert len(cs_ds) == 1 and len(bdd_ds) == 1
    assert cs_ds.get_data_info(0)['seg_map_path'].endswith(
        '_gtFine_labelTrainIds.png')
    for ds in (cs_ds, bdd_ds):
        np.testing.assert_array_equal(
            ds[0]['data_samples'].gt_sem_seg.data.numpy()[0], TRAIN_IDS)
    gta = GTA5Dataset(data_root=make_gta(str(tmp_path / 'gta')),
                      pipeline=PIPELINE)
    both = ConcatDataset([gta, cs_ds, bdd_ds])
    assert len(both) == 5


# -------------------------------------------------------- CheckSegSample ----
def sample(label, img_hw=(2, 3)):
    return dict(img=np.zeros((*img_hw, 3), np.uint8),
                gt_seg_map=np.asarray(label), img_path='x/img.png',
                seg_map_path='x/label.png')


def test_check_seg_sample_passes_valid_and_ignore():
    check = TRANSFORMS.build(dict(type='CheckSegSample'))
    results = sample(TRAIN_IDS)
    assert check(results) is results
    only = sample(np.array([[255, 255, 0], [18, 255, 3]], np.uint8))
    assert check(only) is only


def test_check_seg_sample_rejects_label_ids():
    check = CheckSegSample()
    with pytest.raises(ValueError) as err:
        check(sample(np.array([[7, 26, 0], [255, 19, 26]], np.uint8)))
    message = str(err.value)
    assert '[19, 26]' in message
    assert 'x/img.png' in message and 'x/label.png' in message
    assert 'labelIds' in message and 'converter' in message


def test_check_seg_sample_size_and_options():
    check = CheckSegSample()
    with pytest.raises(ValueError) as err:
        check(sample(TRAIN_IDS, img_hw=(3, 3)))
    assert 'Image size 3x3 differs from label size 3x2' in str(err.value)
    assert 'x/label.png' in str(err.value)
    loose = CheckSegSample(check_size=False)
    assert loose(sample(TRAIN_IDS, img_hw=(3, 3)))['gt_seg_map'] is not None
    five = CheckSegSample(num_classes=5, ignore_index=0)
    with pytest.raises(ValueError, match=r'\[5, 13, 18, 255\]'):
        five(sample(TRAIN_IDS))
    signed = CheckSegSample()
    with pytest.raises(ValueError, match=r'\[-1\]'):
        signed(sample(np.array([[-1, 0, 1], [2, 3, 255]], np.int32)))
    with pytest.raises(ValueError, match='after LoadAnnotations'):
        check(dict(img=np.zeros((2, 3, 3)), img_path='x/img.png'))


def test_check_seg_sample_uses_size_on_disk_after_test_resize():
    """mmseg test pipelines resize the image before loading the label."""
    check = CheckSegSample()
    results = sample(TRAIN_IDS)
    results['img'] = np.zeros((6, 9, 3), np.uint8)  # resized x3
    results['img_shape'] = (6, 9)
    results['ori_shape'] = TRAIN_IDS.shape  # as read from disk
    assert check(results) is results
    results['ori_shape'] = (3, 3)
    with pytest.raises(ValueError, match='differs from label'):
        check(results)


def test_pseudo_target_style_is_a_fixed_draw_per_image():
    from npdg.datasets.transforms import PseudoTargetStyle
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    t = PseudoTargetStyle(seed=3)
    a = t(dict(img=img.copy(), img_path='/x/frame_a.png'))['img']
    again = t(dict(img=img.copy(), img_path='/other/dir/frame_a.png'))['img']
    b = t(dict(img=img.copy(), img_path='/x/frame_b.png'))['img']
    other_seed = PseudoTargetStyle(seed=4)(dict(img=img.copy(), img_path='/x/frame_a.png'))['img']
    assert a.shape == img.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, again)  # the draw follows the file name and seed
    assert not np.array_equal(a, b) and not np.array_equal(a, other_seed)
    assert not np.array_equal(a, img)
    # Degenerate ranges are the identity (up to rounding).
    same = PseudoTargetStyle(gain=(1, 1), contrast=(1, 1), gamma=(1, 1), saturation=(1, 1))
    out = same(dict(img=img.copy(), img_path='f.png'))['img']
    assert np.abs(out.astype(int) - img.astype(int)).max() <= 1
    # Gain alone scales the channels by the drawn factors.
    gain = PseudoTargetStyle(gain=(0.5, 0.5), contrast=(1, 1), gamma=(1, 1), saturation=(1, 1))
    half = gain(dict(img=np.full((2, 2, 3), 200, np.uint8), img_path='f.png'))['img']
    assert (half == 100).all()
    with pytest.raises(ValueError, match='gamma'):
        PseudoTargetStyle(gamma=(0, 1))
