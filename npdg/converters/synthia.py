"""SYNTHIA (RAND-CITYSCAPES) class ids -> Cityscapes train ids.

Layout of the real download::

    <root>/RGB/0000000.png                         RGB frame (1280x760)
    <root>/GT/LABELS/0000000.png                   16-bit 3-channel PNG: red = class id
                                                   (0..22), green = instance id
    <root>/GT/LABELS/0000000_labelTrainIds.png     written here (8-bit, 0..18 / 255)

Frames without a pair, with an image/label size mismatch or an unreadable label are
skipped and listed in ``<root>/skipped_frames.txt`` (read by
:class:`npdg.datasets.SynthiaDataset`). SYNTHIA has no official split: the
converter can write ``train.txt``/``val.txt`` holding out the last frames as
source validation data (``--val-fraction``).
"""
import os.path as osp

import cv2
import numpy as np

from npdg.datasets.label_maps import SYNTHIA_NUM_IDS, synthia_id_to_train_id_lut

from .common import (
    ConversionSummary,
    ConverterInputError,
    LabelReadError,
    LabelTask,
    convert_label_task,
    run_tasks,
    summarize,
)
from .common import write_holdout_lists as _holdout
from .gta import TRAIN_ID_SUFFIX, finish_summary, list_gta_frames

IMAGE_DIR = 'RGB'
LABEL_DIR = 'GT/LABELS'


def read_synthia_label(path: str) -> np.ndarray:
    """Read the class ids of a SYNTHIA label PNG (red channel of 16 bits).

    Args:
        path (str): ``GT/LABELS/<name>.png``.

    Returns:
        np.ndarray: uint8 (H, W) class ids.

    Raises:
        LabelReadError: If the file is unreadable, not 3-channel, or holds a
            class id above 255.
    """
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise LabelReadError(f'cannot read {path!r}')
    if label.ndim != 3 or label.shape[2] < 3:
        raise LabelReadError(
            f'{path!r} has shape {label.shape}; SYNTHIA labels are 3-channel PNGs with the '
            f'class id in the red channel (GT/LABELS, not GT/COLOR).')
    ids = label[..., 2]  # OpenCV reads BGR: red is the last channel
    if ids.size and int(ids.max()) > 255:
        raise LabelReadError(f'{path!r} holds class ids above 255; expected 0..22.')
    return ids.astype(np.uint8)


def convert_synthia(root: str, nproc: int = 1, overwrite: bool = False) -> ConversionSummary:
    """Write ``GT/LABELS/<name>_labelTrainIds.png`` for every usable frame.

    Args:
        root (str): SYNTHIA root (``RGB/``, ``GT/LABELS/``).
        nproc (int): Worker processes.
        overwrite (bool): Redo frames whose output exists.

    Returns:
        ConversionSummary: Counts, skipped frames (also in
        ``<root>/skipped_frames.txt``) and value warnings.
    """
    pairs, unpaired = list_gta_frames(root, IMAGE_DIR, LABEL_DIR, 'SYNTHIA')
    if not pairs:
        raise ConverterInputError(
            f'No SYNTHIA frame has both {root}/{IMAGE_DIR}/<name>.png and '
            f'{root}/{LABEL_DIR}/<name>.png ({len(unpaired)} unpaired file(s)).')
    lut = synthia_id_to_train_id_lut()
    tasks = [LabelTask(name=name, src=label, image=image, lut=lut,
                       dst=osp.join(root, LABEL_DIR, name + TRAIN_ID_SUFFIX),
                       num_source_ids=SYNTHIA_NUM_IDS, overwrite=overwrite,
                       read=read_synthia_label)
             for name, (image, label) in pairs.items()]
    results = run_tasks(convert_label_task, tasks, nproc)
    return finish_summary(root, summarize(f'SYNTHIA {root}', results,
                                          'SYNTHIA class ids (0..22)'), unpaired)


def write_holdout_lists(root: str, val_fraction: float = 0.15) -> tuple:
    """Write ``<root>/train.txt`` and ``val.txt`` (the last frames by name held out).

    Args:
        root (str): SYNTHIA root.
        val_fraction (float): Share of the frames held out for source validation.

    Returns:
        tuple[int, int]: Number of train and val frames.
    """
    return _holdout(root, IMAGE_DIR, val_fraction)
