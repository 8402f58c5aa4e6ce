"""SYNTHIA: label ids -> train ids, the converter, the dataset and the synthetic miniature."""
import os.path as osp

import cv2
import numpy as np
import pytest

import npdg  # noqa: F401
from npdg.converters.common import LabelReadError
from npdg.converters.synthia import convert_synthia, read_synthia_label, write_holdout_lists
from npdg.datasets.label_maps import synthia_id_to_train_id_lut

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# SYNTHIA RAND-CITYSCAPES README class names -> Cityscapes train ids, written out by hand.
EXPECTED = {0: 255, 1: 10, 2: 2, 3: 0, 4: 1, 5: 4, 6: 8, 7: 5, 8: 13, 9: 7, 10: 11, 11: 18,
            12: 17, 13: 255, 14: 255, 15: 6, 16: 9, 17: 12, 18: 14, 19: 15, 20: 16, 21: 3,
            22: 255}


def test_every_synthia_id_maps_to_its_train_id():
    lut = synthia_id_to_train_id_lut()
    assert {i: int(lut[i]) for i in range(23)} == EXPECTED
    assert set(lut[23:].tolist()) == {255}
    assert sorted(v for v in EXPECTED.values() if v != 255) == list(range(19))


def write_raw_label(path, classes, instance=1000):
    """A SYNTHIA GT/LABELS file: 16-bit, red = class, green = instance, blue = junk."""
    bgr = np.zeros(classes.shape + (3, ), np.uint16)
    bgr[..., 2], bgr[..., 1], bgr[..., 0] = classes, instance, 7
    assert cv2.imwrite(path, bgr)


def test_reader_takes_the_red_channel_only(tmp_path):
    classes = np.arange(23, dtype=np.uint16).reshape(1, 23).repeat(2, 0)
    write_raw_label(str(tmp_path / 'a.png'), classes)
    assert np.array_equal(read_synthia_label(str(tmp_path / 'a.png')), classes)
    cv2.imwrite(str(tmp_path / 'gray.png'), classes.astype(np.uint8))
    with pytest.raises(LabelReadError, match='gray.png.*red channel'):
        read_synthia_label(str(tmp_path / 'gray.png'))


def test_converter_writes_train_ids_and_lists_skipped_frames(tmp_path):
    root = tmp_path / 'synthia'
    (root / 'RGB').mkdir(parents=True)
    (root / 'GT' / 'LABELS').mkdir(parents=True)
    rng = np.random.default_rng(0)
    raws = {}
    for name in ('0000000', '0000001', '0000002'):
        raws[name] = rng.integers(0, 23, (6, 8)).astype(np.uint16)
        cv2.imwrite(str(root / 'RGB' / f'{name}.png'), np.zeros((6, 8, 3), np.uint8))
        write_raw_label(str(root / 'GT' / 'LABELS' / f'{name}.png'), raws[name])
    cv2.imwrite(str(root / 'RGB' / '0000003.png'), np.zeros((6, 8, 3), np.uint8))  # no label
    write_raw_label(str(root / 'GT' / 'LABELS' / '0000004.png'), raws['0000000'][:5])  # no image
    cv2.imwrite(str(root / 'RGB' / '0000002.png'), np.zeros((7, 8, 3), np.uint8))  # size
    summary = convert_synthia(str(root))
    for name in ('0000000', '0000001'):
        out = cv2.imread(str(root / 'GT' / 'LABELS' / f'{name}_labelTrainIds.png'),
                         cv2.IMREAD_UNCHANGED)
        expected = np.vectorize(EXPECTED.get)(raws[name])
        assert out.dtype == np.uint8 and np.array_equal(out, expected)
    skipped = dict(summary.skipped)
    assert set(skipped) == {'0000002', '0000003', '0000004'}
    assert 'size mismatch' in skipped['0000002']
    listed = open(root / 'skipped_frames.txt').read()
    assert all(n in listed for n in skipped)
    assert write_holdout_lists(str(root), 0.25) == (3, 1)  # 4 images, the last held out
    assert open(root / 'val.txt').read().split() == ['0000003']


def test_converter_cli_and_missing_folder(tmp_path, capsys):
    import sys
    sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
    import synthia as cli
    assert cli.main([str(tmp_path / 'nowhere')]) == 2
    assert 'nowhere' in capsys.readouterr().err


@pytest.fixture(scope='module')
def miniature(tmp_path_factory):
    from npdg.apis.synthetic_data import prepare_synthetic_domains
    root = tmp_path_factory.mktemp('syn') / 'data'
    prepare_synthetic_domains(str(root), seed=4, nproc=1, num_images=dict(
        gta=0, cityscapes=0, bdd100k=0, mapillary=0, synthia=6), domains=['synthia'])
    return root / 'synthia'


def test_miniature_is_in_synthias_raw_layout_and_converts_like_the_elements(miniature):
    from synthetic_domains.elements import Element, encode_elements
    from synthetic_domains.generate import render_sample
    raw = cv2.imread(str(miniature / 'GT' / 'LABELS' / '0000000.png'), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (114, 192, 3)
    image = cv2.imread(str(miniature / 'RGB' / '0000000.png'))
    assert image.shape == (114, 192, 3)
    converted = cv2.imread(str(miniature / 'GT' / 'LABELS' / '0000000_labelTrainIds.png'),
                           cv2.IMREAD_UNCHANGED)
    # the same frame rendered again: SYNTHIA ids -> train ids equals the Cityscapes train
    # ids of its elements, except lane markings, which SYNTHIA labels as its own class
    _, elements, _, _ = render_sample('synthia', [4, 4, 0, 0], 1.0)
    expected = encode_elements(elements, 'cityscapes_train_id').copy()
    lane = np.isin(elements, [Element.LANE_MARKING, Element.CROSSWALK_MARKING])
    expected[lane] = 255
    assert np.array_equal(converted, expected)
    assert len(np.unique(converted)) > 5
    assert (miniature / 'train.txt').is_file() and (miniature / 'val.txt').is_file()


def test_dataset_reads_the_split_and_names_the_converter(miniature, tmp_path):
    from npdg.datasets import SynthiaDataset
    ds = SynthiaDataset(data_root=str(miniature), split_file='val.txt', pipeline=[],
                        test_mode=True)
    assert [osp.basename(d['img_path']) for d in ds] == ['0000005.png']
    assert ds[0]['seg_map_path'].endswith('GT/LABELS/0000005_labelTrainIds.png')
    (tmp_path / 'RGB').mkdir()
    cv2.imwrite(str(tmp_path / 'RGB' / '0000000.png'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match='tools/dataset_converters/synthia.py'):
        SynthiaDataset(data_root=str(tmp_path), pipeline=[])
