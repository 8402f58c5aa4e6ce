"""Label tables shared by the converters, datasets and checks.

Everything is expressed in the 19 Cityscapes train-id classes with
``IGNORE_INDEX`` (255) for pixels that are not evaluated:

* ``CITYSCAPES_CLASSES`` / ``CITYSCAPES_PALETTE``: the 19 classes (identical
  to mmseg's ``CityscapesDataset.METAINFO``, so datasets can be concatenated).
* ``cityscapes_id_to_train_id_lut()``: Cityscapes (and GTA5) label id ->
  train id, built from ``cityscapesscripts.helpers.labels``.
* ``MAPILLARY_MAPPINGS``: the two Mapillary Vistas v1.2 66 -> 19 mappings in
  use in published domain-generalization work (``narrow``, ``wide``), and
  ``mapillary_lut(name)`` to turn one into a lookup table.
"""
from types import MappingProxyType
from typing import Dict, List, Mapping, Tuple

import numpy as np

IGNORE_INDEX = 255
NUM_CLASSES = 19

CITYSCAPES_CLASSES: Tuple[str, ...] = (
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
    'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
    'truck', 'bus', 'train', 'motorcycle', 'bicycle')

CITYSCAPES_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156),
    (190, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0),
    (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100),
    (0, 0, 230), (119, 11, 32))


def cityscapes_metainfo() -> dict:
    """Return the 19-class metainfo in the form mmseg datasets expect.

    Returns:
        dict: ``classes`` (tuple of str) and ``palette`` (list of [r, g, b]),
        equal to ``mmseg.datasets.CityscapesDataset.METAINFO``.
    """
    return dict(classes=CITYSCAPES_CLASSES,
                palette=[list(color) for color in CITYSCAPES_PALETTE])


def cityscapes_id_to_train_id() -> Dict[int, int]:
    """Return the label id -> train id table from ``cityscapesscripts``.

    Ids whose train id is 255 or -1 (not evaluated) map to ``IGNORE_INDEX``.
    Negative label ids (license plate, -1) cannot appear in an 8-bit PNG and
    are left out.

    Returns:
        dict[int, int]: label id (0..255) -> train id (0..18 or 255).
    """
    from cityscapesscripts.helpers.labels import labels

    table = {}
    for label in labels:
        if not 0 <= label.id <= 255:
            continue
        train_id = label.trainId
        if not 0 <= train_id < NUM_CLASSES:
            train_id = IGNORE_INDEX
        table[label.id] = train_id
    return table


def table_to_lut(table: Mapping[int, int]) -> np.ndarray:
    """Turn a sparse ``{source id: target id}`` table into a 256-entry LUT.

    Args:
        table (Mapping[int, int]): Source ids (0..255) to target ids. Ids not
            in the table map to ``IGNORE_INDEX``.

    Returns:
        np.ndarray: uint8 array of shape (256,); ``lut[label]`` converts an
        uint8 label image.
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for source_id, target_id in table.items():
        lut[source_id] = target_id
    return lut


def cityscapes_id_to_train_id_lut() -> np.ndarray:
    """Return the Cityscapes / GTA5 label id -> train id LUT.

    Returns:
        np.ndarray: uint8 array of shape (256,). Ids outside the Cityscapes
        table and ids that are not evaluated map to 255.
    """
    return table_to_lut(cityscapes_id_to_train_id())


# SYNTHIA (RAND-CITYSCAPES) class ids, stored in the red channel of its 16-bit
# GT/LABELS PNGs: 0 void, 1 sky, 2 building, 3 road, 4 sidewalk, 5 fence,
# 6 vegetation, 7 pole, 8 car, 9 traffic sign, 10 pedestrian, 11 bicycle,
# 12 motorcycle, 13 parking-slot, 14 road-work, 15 traffic light, 16 terrain,
# 17 rider, 18 truck, 19 bus, 20 train, 21 wall, 22 lanemarking.
SYNTHIA_NUM_IDS = 23
SYNTHIA_ID_TO_TRAIN_ID = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10, 10: 11,
    17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18,
}  # void, parking-slot, road-work and lanemarking -> 255 (the usual SYNTHIA -> Cityscapes map)


def synthia_id_to_train_id_lut() -> np.ndarray:
    """Return the SYNTHIA class id -> Cityscapes train id LUT.

    Returns:
        np.ndarray: uint8 array of shape (256,); SYNTHIA's void (0),
        parking-slot (13), road-work (14), lanemarking (22) and unknown ids
        map to 255.
    """
    return table_to_lut(SYNTHIA_ID_TO_TRAIN_ID)


# Mapillary Vistas v1.2 (66 classes) -> 19 Cityscapes train ids. Each entry:
# train id -> Mapillary v1.2 ids. Every id not listed maps to 255.
_NARROW = {
    0: (13, 24, 41),   # road <- Road, Lane Marking - General, Manhole
    1: (2, 15),        # sidewalk <- Curb, Sidewalk
    2: (17,),          # building <- Building
    3: (6,),           # wall <- Wall
    4: (3,),           # fence <- Fence
    5: (45, 47),       # pole <- Pole, Utility Pole
    6: (48,),          # traffic light <- Traffic Light
    7: (50,),          # traffic sign <- Traffic Sign (Front)
    8: (30,),          # vegetation <- Vegetation
    9: (29,),          # terrain <- Terrain
    10: (27,),         # sky <- Sky
    11: (19,),         # person <- Person
    12: (20, 21, 22),  # rider <- Bicyclist, Motorcyclist, Other Rider
    13: (55,),         # car <- Car
    14: (61,),         # truck <- Truck
    15: (54,),         # bus <- Bus
    16: (58,),         # train <- On Rails
    17: (57,),         # motorcycle <- Motorcycle
    18: (52,),         # bicycle <- Bicycle
}

# "wide": narrow without 41 Manhole, plus the ids below.
_WIDE_EXTRA = {
    0: (7, 8, 10, 14, 23),  # Bike Lane, Crosswalk - Plain, Parking,
                            # Service Lane, Lane Marking - Crosswalk
    1: (9, 11),             # Curb Cut, Pedestrian Area
    5: (44,),               # Street Light
    7: (46, 49),            # Traffic Sign Frame, Traffic Sign (Back)
}
_WIDE_REMOVED = (41,)


def _build_wide() -> Dict[int, Tuple[int, ...]]:
    """Derive the ``wide`` mapping from ``narrow`` (see module tables).

    Returns:
        dict[int, tuple[int, ...]]: train id -> sorted Mapillary ids.
    """
    wide = {}
    for train_id, ids in _NARROW.items():
        merged = set(ids) | set(_WIDE_EXTRA.get(train_id, ()))
        wide[train_id] = tuple(sorted(merged - set(_WIDE_REMOVED)))
    return wide


MAPILLARY_MAPPINGS: Mapping[str, Mapping[int, Tuple[int, ...]]] = \
    MappingProxyType({
        'narrow': MappingProxyType(
            {k: tuple(sorted(v)) for k, v in _NARROW.items()}),
        'wide': MappingProxyType(_build_wide()),
    })
MAPILLARY_MAPPING_NAMES: Tuple[str, ...] = tuple(MAPILLARY_MAPPINGS)
MAPILLARY_NUM_CLASSES = 66

# Mapillary v1.2 names of every id used by either mapping (checked against
# mmseg's MapillaryDataset_v1 in the tests).
MAPILLARY_USED_NAMES: Mapping[int, str] = MappingProxyType({
    2: 'Curb', 3: 'Fence', 6: 'Wall', 7: 'Bike Lane', 8: 'Crosswalk - Plain',
    9: 'Curb Cut', 10: 'Parking', 11: 'Pedestrian Area', 13: 'Road',
    14: 'Service Lane', 15: 'Sidewalk', 17: 'Building', 19: 'Person',
    20: 'Bicyclist', 21: 'Motorcyclist', 22: 'Other Rider',
    23: 'Lane Marking - Crosswalk', 24: 'Lane Marking - General',
    27: 'Sky', 29: 'Terrain', 30: 'Vegetation', 41: 'Manhole',
    44: 'Street Light', 45: 'Pole', 46: 'Traffic Sign Frame',
    47: 'Utility Pole', 48: 'Traffic Light', 49: 'Traffic Sign (Back)',
    50: 'Traffic Sign (Front)', 52: 'Bicycle', 54: 'Bus', 55: 'Car',
    57: 'Motorcycle', 58: 'On Rails', 61: 'Truck'})


def check_mapillary_mapping_name(name: str) -> str:
    """Validate a Mapillary mapping name.

    Args:
        name (str): ``'narrow'`` or ``'wide'``.

    Returns:
        str: The same name.

    Raises:
        ValueError: If the name is not a known mapping.
    """
    if name not in MAPILLARY_MAPPINGS:
        raise ValueError(
            f'Unknown Mapillary mapping {name!r}; choose one of '
            f'{list(MAPILLARY_MAPPING_NAMES)}.')
    return name


def mapillary_id_to_train_id(name: str) -> Dict[int, int]:
    """Return a Mapillary mapping as a flat ``{mapillary id: train id}`` dict.

    Args:
        name (str): ``'narrow'`` or ``'wide'``.

    Returns:
        dict[int, int]: Only the mapped ids; every other id means 255.
    """
    check_mapillary_mapping_name(name)
    return {source_id: train_id
            for train_id, ids in MAPILLARY_MAPPINGS[name].items()
            for source_id in ids}


def mapillary_lut(name: str) -> np.ndarray:
    """Return the Mapillary v1.2 id -> train id LUT of one mapping.

    Args:
        name (str): ``'narrow'`` or ``'wide'``.

    Returns:
        np.ndarray: uint8 array of shape (256,); unmapped ids -> 255.
    """
    return table_to_lut(mapillary_id_to_train_id(name))


def mapillary_class_names() -> Tuple[str, ...]:
    """Return the 66 Mapillary v1.2 class names (from mmseg).

    Returns:
        tuple[str, ...]: Name of class id ``i`` at index ``i``.
    """
    from mmseg.datasets import MapillaryDataset_v1

    return tuple(MapillaryDataset_v1.METAINFO['classes'])


def mapillary_mapping_record(name: str) -> dict:
    """Describe a mapping completely, for ``mapping.json`` next to labels.

    Args:
        name (str): ``'narrow'`` or ``'wide'``.

    Returns:
        dict: ``mapping`` (the name), ``source``, ``classes`` (the 19 names),
        ``ignore_index``, ``train_id_to_mapillary_ids`` and ``table`` (one
        entry per Mapillary id 0..65 with its name and train id).
    """
    flat = mapillary_id_to_train_id(name)
    names = mapillary_class_names()
    table: List[dict] = []
    for source_id in range(MAPILLARY_NUM_CLASSES):
        train_id = flat.get(source_id, IGNORE_INDEX)
        table.append(dict(
            id=source_id, name=names[source_id], train_id=train_id,
            train_class=(CITYSCAPES_CLASSES[train_id]
                         if train_id != IGNORE_INDEX else 'ignore')))
    return dict(
        mapping=name,
        source='Mapillary Vistas v1.2 (66 classes)',
        classes=list(CITYSCAPES_CLASSES),
        ignore_index=IGNORE_INDEX,
        train_id_to_mapillary_ids={
            str(k): list(v) for k, v in MAPILLARY_MAPPINGS[name].items()},
        table=table)
