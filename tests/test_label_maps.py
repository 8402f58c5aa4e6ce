"""Label tables against the data spec (hand-typed expectations)."""
import numpy as np
import pytest

import npdg  # noqa: F401
from npdg.datasets import label_maps as lm

# Cityscapes label id -> train id, as in the data spec's table.
EXPECTED_CITYSCAPES = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}

# Mapillary v1.2 id -> train id for every mapped id; all other ids -> 255.
EXPECTED_NARROW = {
    13: 0, 24: 0, 41: 0,
    2: 1, 15: 1,
    17: 2, 6: 3, 3: 4,
    45: 5, 47: 5,
    48: 6, 50: 7, 30: 8, 29: 9, 27: 10, 19: 11,
    20: 12, 21: 12, 22: 12,
    55: 13, 61: 14, 54: 15, 58: 16, 57: 17, 52: 18}
EXPECTED_WIDE = {
    13: 0, 24: 0, 7: 0, 8: 0, 10: 0, 14: 0, 23: 0,
    2: 1, 15: 1, 9: 1, 11: 1,
    17: 2, 6: 3, 3: 4,
    45: 5, 47: 5, 44: 5,
    48: 6, 50: 7, 46: 7, 49: 7, 30: 8, 29: 9, 27: 10, 19: 11,
    20: 12, 21: 12, 22: 12,
    55: 13, 61: 14, 54: 15, 58: 16, 57: 17, 52: 18}

# Names (from the spec / the Mapillary v1.2 class list) of every mapped id.
EXPECTED_NAMES = {
    2: 'Curb', 3: 'Fence', 6: 'Wall', 7: 'Bike Lane',
    8: 'Crosswalk - Plain', 9: 'Curb Cut', 10: 'Parking',
    11: 'Pedestrian Area', 13: 'Road', 14: 'Service Lane', 15: 'Sidewalk',
    17: 'Building', 19: 'Person', 20: 'Bicyclist', 21: 'Motorcyclist',
    22: 'Other Rider', 23: 'Lane Marking - Crosswalk',
    24: 'Lane Marking - General', 27: 'Sky', 29: 'Terrain',
    30: 'Vegetation', 41: 'Manhole', 44: 'Street Light', 45: 'Pole',
    46: 'Traffic Sign Frame', 47: 'Utility Pole', 48: 'Traffic Light',
    49: 'Traffic Sign (Back)', 50: 'Traffic Sign (Front)', 52: 'Bicycle',
    54: 'Bus', 55: 'Car', 57: 'Motorcycle', 58: 'On Rails', 61: 'Truck'}


def test_cityscapes_lut_matches_spec_table():
    lut = lm.cityscapes_id_to_train_id_lut()
    assert lut.dtype == np.uint8 and lut.shape == (256,)
    for label_id in range(256):
        assert lut[label_id] == EXPECTED_CITYSCAPES.get(label_id, 255), \
            label_id


@pytest.mark.parametrize('label_id', [0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16,
                                      18, 29, 30, 34, 100, 255])
def test_cityscapes_lut_ignored_ids(label_id):
    assert lm.cityscapes_id_to_train_id_lut()[label_id] == 255


def test_cityscapes_table_comes_from_cityscapesscripts():
    table = lm.cityscapes_id_to_train_id()
    assert set(table) == set(range(34))  # license plate (-1) left out
    assert {k: v for k, v in table.items() if v != 255} == EXPECTED_CITYSCAPES


def test_metainfo_equals_mmseg_cityscapes_and_bdd():
    from mmseg.datasets import BDD100KDataset, CityscapesDataset
    meta = lm.cityscapes_metainfo()
    for cls in (CityscapesDataset, BDD100KDataset):
        assert tuple(meta['classes']) == tuple(cls.METAINFO['classes'])
        assert [list(c) for c in meta['palette']] == \
            [list(c) for c in cls.METAINFO['palette']]


@pytest.mark.parametrize('name,expected', [('narrow', EXPECTED_NARROW),
                                           ('wide', EXPECTED_WIDE)])
def test_mapillary_lut_every_id(name, expected):
    lut = lm.mapillary_lut(name)
    assert lut.dtype == np.uint8 and lut.shape == (256,)
    for source_id in range(256):
        assert lut[source_id] == expected.get(source_id, 255), \
            (name, source_id)
    assert lm.mapillary_id_to_train_id(name) == expected


def test_mapillary_wide_differs_from_narrow_as_specified():
    narrow, wide = set(EXPECTED_NARROW), set(EXPECTED_WIDE)
    assert narrow - wide == {41}
    assert wide - narrow == {7, 8, 10, 14, 23, 9, 11, 44, 46, 49}


def test_mapillary_names_match_mmseg():
    classes = lm.mapillary_class_names()
    assert len(classes) == 66
    used = set(EXPECTED_NARROW) | set(EXPECTED_WIDE)
    assert set(EXPECTED_NAMES) == used
    assert dict(lm.MAPILLARY_USED_NAMES) == EXPECTED_NAMES
    for source_id, name in EXPECTED_NAMES.items():
        assert classes[source_id] == name, source_id


def test_mapillary_mapping_record_full_table():
    record = lm.mapillary_mapping_record('wide')
    assert record['mapping'] == 'wide'
    assert [e['id'] for e in record['table']] == list(range(66))
    for entry in record['table']:
        assert entry['train_id'] == EXPECTED_WIDE.get(entry['id'], 255)
    assert record['table'][49]['name'] == 'Traffic Sign (Back)'
    assert record['table'][49]['train_class'] == 'traffic sign'
    assert record['table'][65]['train_class'] == 'ignore'


def test_unknown_mapping_name_raises():
    with pytest.raises(ValueError, match="'narrow', 'wide'"):
        lm.mapillary_lut('medium')
