"""On-disk layouts, file names, sizes and label encodings of the datasets.

Each synthetic dataset is written exactly in its real counterpart's raw
layout (see ``/work/shared/spec/data.md``):

=============  ===============================================================
GTA5           ``gta/images/00001.png`` (RGB), ``gta/labels/00001.png``
               (palettised 'P' PNG, pixel = Cityscapes label id)
Cityscapes     ``cityscapes/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>``
               ``_leftImg8bit.png`` and ``cityscapes/gtFine/<split>/<city>/``
               ``..._gtFine_labelIds.png`` (8-bit 'L', label ids)
BDD100K        ``bdd100k/images/10k/<split>/<name>.jpg`` and
               ``bdd100k/labels/sem_seg/masks/<split>/<name>.png`` ('L',
               train ids 0..18, 255)
Mapillary      ``mapillary/<split>/images/<name>.jpg`` and
               ``mapillary/<split>/v1.2/labels/<name>.png`` (or
               ``<split>/labels/`` with ``layout='v1.2'``), palettised 'P'
               PNG of v1.2 class ids 0..65
SYNTHIA        ``synthia/RGB/0000000.png`` and ``synthia/GT/LABELS/0000000.png``
               (16-bit 3-channel PNG: red = SYNTHIA class id 0..22, green =
               instance id, here 0); made only when asked for
=============  ===============================================================
"""
import dataclasses
import math
import os

import cv2
import numpy as np
from PIL import Image

from .elements import encode_elements, label_palette

MAPILLARY_LAYOUTS = ('v1.2+v2.0', 'v1.2')


@dataclasses.dataclass(frozen=True)
class DomainFormat:
    """Static description of one dataset's raw format.

    Attributes:
        name (str): Domain key (also its folder under the output root).
        splits (tuple): Split names in the real dataset's spelling.
        default_counts (dict): Default number of images per split.
        encoding (str): Label encoding (see
            :data:`synthetic_domains.elements.ENCODINGS`).
        label_mode (str): PIL mode of the label files (``'P'``/``'L'``).
        image_ext (str): Image file extension.
        base_size (tuple): ``(width, height)`` at ``scale=1`` (None when
            sizes vary per image).
    """
    name: str
    splits: tuple
    default_counts: dict
    encoding: str
    label_mode: str
    image_ext: str
    base_size: tuple = None


FORMATS = {
    'gta': DomainFormat('gta', ('all',), {'all': 400}, 'cityscapes_id', 'P',
                        '.png', (192, 106)),
    'cityscapes': DomainFormat('cityscapes', ('train', 'val'),
                               {'train': 50, 'val': 150}, 'cityscapes_id',
                               'L', '.png', (256, 128)),
    'bdd100k': DomainFormat('bdd100k', ('train', 'val'),
                            {'train': 50, 'val': 150}, 'cityscapes_train_id',
                            'L', '.jpg', (224, 126)),
    'mapillary': DomainFormat('mapillary', ('training', 'validation'),
                              {'training': 50, 'validation': 150},
                              'mapillary_v1_2', 'P', '.jpg', None),
    # SYNTHIA RAND-CITYSCAPES is 1280x760; a second synthetic source, only on request
    'synthia': DomainFormat('synthia', ('all',), {'all': 200}, 'synthia_id', 'RGB16',
                            '.png', (192, 114)),
}
DOMAINS = tuple(FORMATS)
#: What the generator makes unless told otherwise (SYNTHIA only when asked for).
DEFAULT_DOMAINS = ('gta', 'cityscapes', 'bdd100k', 'mapillary')

# Real Cityscapes cities (fine annotations) with their image counts, used as
# weights to spread the synthetic frames over cities.
CITYSCAPES_CITIES = {
    'train': (('aachen', 174), ('bochum', 96), ('bremen', 316)),
    'val': (('frankfurt', 267), ('lindau', 59), ('munster', 174)),
}
_MAPILLARY_ASPECTS = ((4 / 3, 0.7), (16 / 9, 0.15), (3 / 2, 0.1),
                      (5 / 4, 0.05))
_NAME_CHARS = ('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
               '0123456789_-')


def _scaled(value, scale):
    """Scale a pixel size (rounding halves up), at least 16 pixels."""
    return max(16, int(math.floor(value * scale + 0.5)))


def image_size(domain, rng, scale):
    """Pixel size of one image.

    Args:
        domain (str): Domain key.
        rng (np.random.Generator): Random source (used for Mapillary only,
            whose images vary in width and aspect ratio).
        scale (float): Size multiplier.

    Returns:
        tuple: ``(width, height)``.
    """
    fmt = FORMATS[domain]
    if fmt.base_size is not None:
        w, h = fmt.base_size
        return _scaled(w, scale), _scaled(h, scale)
    width = rng.uniform(160.0, 256.0)
    probs = np.array([p for _, p in _MAPILLARY_ASPECTS])
    aspect = _MAPILLARY_ASPECTS[int(rng.choice(len(probs), p=probs))][0]
    return _scaled(width, scale), _scaled(width / aspect, scale)


def split_counts_over_cities(count, split):
    """Spread ``count`` Cityscapes frames over the split's cities.

    Args:
        count (int): Number of frames.
        split (str): ``'train'`` or ``'val'``.

    Returns:
        list[tuple]: ``(city, n)`` pairs summing to ``count``
        (largest-remainder rounding of the real city proportions).
    """
    cities = CITYSCAPES_CITIES[split]
    total = sum(n for _, n in cities)
    exact = [count * n / total for _, n in cities]
    base = [int(e) for e in exact]
    order = sorted(range(len(cities)), key=lambda i: base[i] - exact[i])
    for i in order[:count - sum(base)]:
        base[i] += 1
    return [(city, n) for (city, _), n in zip(cities, base)]


def _unique_names(rng, count, make):
    """Draw ``count`` distinct names with ``make(rng)``."""
    names, seen = [], set()
    while len(names) < count:
        name = make(rng)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _bdd_name(rng):
    """A BDD100K-like name such as ``7d06fefd-f7be05a6``."""
    a, b = rng.integers(0, 2 ** 32, size=2)
    return f'{int(a):08x}-{int(b):08x}'


def _mapillary_name(rng):
    """A Mapillary-like 22-character key (never starting with '-')."""
    idx = rng.integers(0, len(_NAME_CHARS), size=22)
    idx[0] = idx[0] % 62
    return ''.join(_NAME_CHARS[i] for i in idx)


def plan_paths(domain, split, count, rng, mapillary_layout='v1.2+v2.0'):
    """File paths (relative to the output root) of one split.

    Args:
        domain (str): Domain key.
        split (str): Split name (one of the domain's ``splits``).
        count (int): Number of images.
        rng (np.random.Generator): Random source for file names.
        mapillary_layout (str): ``'v1.2+v2.0'`` (labels under
            ``<split>/v1.2/labels``) or ``'v1.2'`` (``<split>/labels``).

    Returns:
        list[tuple]: ``(image_path, label_path)`` per image, POSIX style.
    """
    if domain == 'gta':
        return [(f'gta/images/{i:05d}.png', f'gta/labels/{i:05d}.png')
                for i in range(1, count + 1)]
    if domain == 'cityscapes':
        paths = []
        for city, n in split_counts_over_cities(count, split):
            for seq in range(n):
                stem = f'{city}_{seq:06d}_000019'
                paths.append((
                    f'cityscapes/leftImg8bit/{split}/{city}/'
                    f'{stem}_leftImg8bit.png',
                    f'cityscapes/gtFine/{split}/{city}/'
                    f'{stem}_gtFine_labelIds.png'))
        return paths
    if domain == 'synthia':
        return [(f'synthia/RGB/{i:07d}.png', f'synthia/GT/LABELS/{i:07d}.png')
                for i in range(count)]
    if domain == 'bdd100k':
        return [(f'bdd100k/images/10k/{split}/{n}.jpg',
                 f'bdd100k/labels/sem_seg/masks/{split}/{n}.png')
                for n in _unique_names(rng, count, _bdd_name)]
    if domain == 'mapillary':
        if mapillary_layout not in MAPILLARY_LAYOUTS:
            raise ValueError(f'mapillary_layout must be one of '
                             f'{MAPILLARY_LAYOUTS}, got {mapillary_layout!r}')
        labels = ('v1.2/labels' if mapillary_layout == 'v1.2+v2.0'
                  else 'labels')
        return [(f'mapillary/{split}/images/{n}.jpg',
                 f'mapillary/{split}/{labels}/{n}.png')
                for n in _unique_names(rng, count, _mapillary_name)]
    raise KeyError(f'Unknown synthetic domain {domain!r}; known: {DOMAINS}')


def encode_label(domain, element_map):
    """Encode an element map in the domain's label space."""
    return encode_elements(element_map, FORMATS[domain].encoding)


def write_image(path, rgb, jpeg_quality=95):
    """Write an RGB image as PNG or JPEG (by the path's extension).

    Args:
        path (str): Output path (``.png`` or ``.jpg``).
        rgb (np.ndarray): ``(H, W, 3)`` uint8 RGB.
        jpeg_quality (int): JPEG quality for ``.jpg`` files.
    """
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    if path.endswith('.jpg'):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    if not cv2.imwrite(path, bgr, params):
        raise OSError(f'Could not write image {path}')


def write_label(path, label, domain):
    """Write a label map in the domain's PNG mode.

    Args:
        path (str): Output ``.png`` path.
        label (np.ndarray): ``(H, W)`` uint8 encoded labels.
        domain (str): Domain key (decides 'P' with palette or 'L').
    """
    fmt = FORMATS[domain]
    label = np.ascontiguousarray(label, dtype=np.uint8)
    if fmt.label_mode == 'RGB16':  # SYNTHIA: class id in red, instance (0) in green
        bgr = np.zeros(label.shape + (3, ), dtype=np.uint16)
        bgr[..., 2] = label
        if not cv2.imwrite(path, bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise OSError(f'Could not write label {path}')
    elif fmt.label_mode == 'P':
        h, w = label.shape
        img = Image.frombytes('P', (w, h), label.tobytes())
        img.putpalette(label_palette(fmt.encoding))
        img.save(path, format='PNG')
    elif not cv2.imwrite(path, label, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError(f'Could not write label {path}')


def ensure_dirs(root, rel_paths):
    """Create the parent folders of all ``rel_paths`` under ``root``."""
    for folder in sorted({os.path.dirname(p) for p in rel_paths}):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
