"""Scene elements of the synthetic street scenes and their label encodings.

A synthetic scene is first laid out in an internal, fine-grained element
enumeration (:class:`Element`). Each dataset then encodes those elements in
its own label space:

* GTA5 and Cityscapes: Cityscapes *label ids* (0..33), from
  ``cityscapesscripts.helpers.labels``.
* BDD100K: Cityscapes *train ids* (0..18, 255 = ignore), derived from the
  label ids with the same table.
* Mapillary Vistas v1.2: the 66 v1.2 class ids (0..65), in the order of
  ``mmseg.datasets.MapillaryDataset_v1.METAINFO['classes']``.

Fine elements such as lane markings, crosswalks, curbs, bike lanes or the
back of traffic signs all become coarse Cityscapes classes, but keep their
own Mapillary class, so the two published 66 -> 19 Mapillary mappings give
different results on the synthetic Mapillary labels, as they do on the real
ones.
"""
import enum
from functools import lru_cache

import numpy as np

#: Names of the encodings accepted by :func:`element_lut`.
ENCODINGS = ('cityscapes_id', 'cityscapes_train_id', 'mapillary_v1_2', 'synthia_id')


class Element(enum.IntEnum):
    """Internal scene elements (fine classes) of the synthetic scenes."""
    UNLABELED = 0
    EGO_VEHICLE = 1
    CAR_MOUNT = 2
    SKY = 3
    BUILDING = 4
    BILLBOARD = 5
    WALL = 6
    FENCE = 7
    GUARD_RAIL = 8
    BRIDGE = 9
    VEGETATION = 10
    MOUNTAIN = 11
    TERRAIN = 12
    GROUND = 13
    ROAD = 14
    LANE_MARKING = 15
    CROSSWALK_MARKING = 16
    CROSSWALK_PLAIN = 17
    MANHOLE = 18
    CATCH_BASIN = 19
    BIKE_LANE = 20
    SERVICE_LANE = 21
    PARKING = 22
    RAIL_TRACK = 23
    SIDEWALK = 24
    CURB = 25
    CURB_CUT = 26
    PEDESTRIAN_AREA = 27
    POLE = 28
    UTILITY_POLE = 29
    STREET_LIGHT = 30
    SIGN_FRAME = 31
    POLEGROUP = 32
    TRAFFIC_LIGHT = 33
    SIGN_FRONT = 34
    SIGN_BACK = 35
    BENCH = 36
    TRASH_CAN = 37
    FIRE_HYDRANT = 38
    JUNCTION_BOX = 39
    WHEELED_SLOW = 40
    PERSON = 41
    BICYCLIST = 42
    MOTORCYCLIST = 43
    CAR = 44
    TRUCK = 45
    BUS = 46
    CARAVAN = 47
    TRAILER = 48
    TRAIN = 49
    MOTORCYCLE = 50
    BICYCLE = 51


# Element -> (Cityscapes label name, Mapillary v1.2 class name). Names, not
# numbers, so a typo fails loudly against the reference tables.
_ENCODING_NAMES = {
    Element.UNLABELED: ('unlabeled', 'Unlabeled'),
    Element.EGO_VEHICLE: ('ego vehicle', 'Ego Vehicle'),
    Element.CAR_MOUNT: ('ego vehicle', 'Car Mount'),
    Element.SKY: ('sky', 'Sky'),
    Element.BUILDING: ('building', 'Building'),
    Element.BILLBOARD: ('building', 'Billboard'),
    Element.WALL: ('wall', 'Wall'),
    Element.FENCE: ('fence', 'Fence'),
    Element.GUARD_RAIL: ('guard rail', 'Guard Rail'),
    Element.BRIDGE: ('bridge', 'Bridge'),
    Element.VEGETATION: ('vegetation', 'Vegetation'),
    Element.MOUNTAIN: ('vegetation', 'Mountain'),
    Element.TERRAIN: ('terrain', 'Terrain'),
    Element.GROUND: ('ground', 'Sand'),
    Element.ROAD: ('road', 'Road'),
    Element.LANE_MARKING: ('road', 'Lane Marking - General'),
    Element.CROSSWALK_MARKING: ('road', 'Lane Marking - Crosswalk'),
    Element.CROSSWALK_PLAIN: ('road', 'Crosswalk - Plain'),
    Element.MANHOLE: ('road', 'Manhole'),
    Element.CATCH_BASIN: ('road', 'Catch Basin'),
    Element.BIKE_LANE: ('road', 'Bike Lane'),
    Element.SERVICE_LANE: ('road', 'Service Lane'),
    Element.PARKING: ('parking', 'Parking'),
    Element.RAIL_TRACK: ('rail track', 'Rail Track'),
    Element.SIDEWALK: ('sidewalk', 'Sidewalk'),
    Element.CURB: ('sidewalk', 'Curb'),
    Element.CURB_CUT: ('sidewalk', 'Curb Cut'),
    Element.PEDESTRIAN_AREA: ('sidewalk', 'Pedestrian Area'),
    Element.POLE: ('pole', 'Pole'),
    Element.UTILITY_POLE: ('pole', 'Utility Pole'),
    Element.STREET_LIGHT: ('pole', 'Street Light'),
    Element.SIGN_FRAME: ('pole', 'Traffic Sign Frame'),
    Element.POLEGROUP: ('polegroup', 'Pole'),
    Element.TRAFFIC_LIGHT: ('traffic light', 'Traffic Light'),
    Element.SIGN_FRONT: ('traffic sign', 'Traffic Sign (Front)'),
    Element.SIGN_BACK: ('traffic sign', 'Traffic Sign (Back)'),
    Element.BENCH: ('static', 'Bench'),
    Element.TRASH_CAN: ('static', 'Trash Can'),
    Element.FIRE_HYDRANT: ('static', 'Fire Hydrant'),
    Element.JUNCTION_BOX: ('static', 'Junction Box'),
    Element.WHEELED_SLOW: ('dynamic', 'Wheeled Slow'),
    Element.PERSON: ('person', 'Person'),
    Element.BICYCLIST: ('rider', 'Bicyclist'),
    Element.MOTORCYCLIST: ('rider', 'Motorcyclist'),
    Element.CAR: ('car', 'Car'),
    Element.TRUCK: ('truck', 'Truck'),
    Element.BUS: ('bus', 'Bus'),
    Element.CARAVAN: ('caravan', 'Caravan'),
    Element.TRAILER: ('trailer', 'Trailer'),
    Element.TRAIN: ('train', 'On Rails'),
    Element.MOTORCYCLE: ('motorcycle', 'Motorcycle'),
    Element.BICYCLE: ('bicycle', 'Bicycle'),
}


@lru_cache(maxsize=1)
def cityscapes_labels():
    """Return the Cityscapes label table (``cityscapesscripts``).

    Returns:
        list: ``cityscapesscripts.helpers.labels.labels`` (namedtuples with
        ``name``, ``id``, ``trainId``, ``color``).
    """
    from cityscapesscripts.helpers.labels import labels
    return labels


@lru_cache(maxsize=1)
def mapillary_metainfo():
    """Return the Mapillary Vistas v1.2 class names and palette.

    Returns:
        tuple: ``(classes, palette)``, 66 names and 66 RGB triples, index =
        v1.2 class id (taken from mmseg's ``MapillaryDataset_v1``).
    """
    from mmseg.datasets import MapillaryDataset_v1

    import npdg  # noqa: F401  (compat shims before mmseg)
    meta = MapillaryDataset_v1.METAINFO
    return tuple(meta['classes']), tuple(tuple(c) for c in meta['palette'])


def _cityscapes_id_of(name):
    """Map a Cityscapes label name to its label id (``ValueError`` if none)."""
    for label in cityscapes_labels():
        if label.name == name and label.id >= 0:
            return label.id
    raise ValueError(f'Unknown Cityscapes label name {name!r} in '
                     'synthetic_domains/elements.py')


def _mapillary_id_of(name):
    """Map a Mapillary v1.2 class name to its id (``ValueError`` if none)."""
    classes, _ = mapillary_metainfo()
    if name not in classes:
        raise ValueError(f'Unknown Mapillary v1.2 class {name!r} in '
                         'synthetic_domains/elements.py')
    return classes.index(name)


# Cityscapes label name -> SYNTHIA (RAND-CITYSCAPES) class id; every other name is
# SYNTHIA's void (0). Lane markings are SYNTHIA's own class 22 (see element_lut).
_SYNTHIA_IDS = {
    'sky': 1, 'building': 2, 'road': 3, 'sidewalk': 4, 'fence': 5, 'vegetation': 6,
    'pole': 7, 'car': 8, 'traffic sign': 9, 'person': 10, 'bicycle': 11, 'motorcycle': 12,
    'parking': 13, 'traffic light': 15, 'terrain': 16, 'rider': 17, 'truck': 18, 'bus': 19,
    'train': 20, 'wall': 21,
}
_SYNTHIA_LANE_MARKING = 22


@lru_cache(maxsize=None)
def element_lut(encoding):
    """Build the lookup table from :class:`Element` to a dataset label value.

    Args:
        encoding (str): One of :data:`ENCODINGS`.

    Returns:
        np.ndarray: ``uint8`` array of length ``len(Element)``; index with an
        element map to get the encoded label map.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f'encoding must be one of {ENCODINGS}, got '
                         f'{encoding!r}')
    lut = np.zeros(len(Element), dtype=np.uint8)
    train_ids = {lab.id: lab.trainId for lab in cityscapes_labels()}
    for element, (cs_name, map_name) in _ENCODING_NAMES.items():
        if encoding == 'mapillary_v1_2':
            lut[element] = _mapillary_id_of(map_name)
            continue
        label_id = _cityscapes_id_of(cs_name)
        if encoding == 'synthia_id':
            lane = element in (Element.LANE_MARKING, Element.CROSSWALK_MARKING)
            lut[element] = _SYNTHIA_LANE_MARKING if lane else _SYNTHIA_IDS.get(cs_name, 0)
            continue
        if encoding == 'cityscapes_id':
            lut[element] = label_id
        else:
            train_id = train_ids[label_id]
            lut[element] = 255 if train_id in (-1, 255) else train_id
    lut.setflags(write=False)
    return lut


def encode_elements(element_map, encoding):
    """Encode an element map in a dataset's label space.

    Args:
        element_map (np.ndarray): ``uint8`` map of :class:`Element` values.
        encoding (str): One of :data:`ENCODINGS`.

    Returns:
        np.ndarray: ``uint8`` label map of the same shape.
    """
    return element_lut(encoding)[element_map]


@lru_cache(maxsize=None)
def label_palette(encoding):
    """Return the 768-entry PNG palette used for palettised label files.

    Args:
        encoding (str): ``'cityscapes_id'`` (GTA5 labels, Cityscapes colours
            per label id) or ``'mapillary_v1_2'`` (official Mapillary colours).

    Returns:
        list[int]: Flat ``[r0, g0, b0, r1, ...]`` list of 256 colours.
    """
    colours = [(0, 0, 0)] * 256
    if encoding == 'cityscapes_id':
        for label in cityscapes_labels():
            if 0 <= label.id < 256:
                colours[label.id] = tuple(label.color)
    elif encoding == 'mapillary_v1_2':
        _, palette = mapillary_metainfo()
        colours[:len(palette)] = palette
    else:
        raise ValueError("label_palette supports 'cityscapes_id' and "
                         f"'mapillary_v1_2', got {encoding!r}")
    return [int(v) for colour in colours for v in colour]
