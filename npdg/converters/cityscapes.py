"""Cityscapes ``*_gtFine_labelIds.png`` -> ``*_gtFine_labelTrainIds.png``.

Layout (see the data spec)::

    <root>/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

The train-id file is written next to each label-id file with the label id ->
train id table of ``cityscapesscripts`` (no polygon rasterisation needed).
"""
import glob
import os.path as osp
from typing import List, Optional, Sequence

from npdg.datasets.label_maps import cityscapes_id_to_train_id_lut

from .common import (
    CITYSCAPES_MAX_LABEL_ID,
    ConversionSummary,
    ConverterInputError,
    LabelTask,
    convert_label_task,
    require_dir,
    run_tasks,
    summarize,
)

LABEL_ID_SUFFIX = '_gtFine_labelIds.png'
TRAIN_ID_SUFFIX = '_gtFine_labelTrainIds.png'
DEFAULT_SPLITS = ('train', 'val')


def resolve_splits(gt_dir: str,
                   splits: Optional[Sequence[str]]) -> List[str]:
    """Choose the splits to convert.

    Args:
        gt_dir (str): The ``gtFine`` folder.
        splits (Sequence[str], optional): Requested splits; each must exist.
            ``None`` takes those of ``train``/``val`` that exist.

    Returns:
        list[str]: Split names.

    Raises:
        ConverterInputError: If a requested split folder is missing, or with
            ``splits=None``, if neither default split exists.
    """
    if splits:
        for split in splits:
            require_dir(osp.join(gt_dir, split), f'Cityscapes split {split!r}')
        return list(splits)
    found = [s for s in DEFAULT_SPLITS if osp.isdir(osp.join(gt_dir, s))]
    if not found:
        raise ConverterInputError(
            'No Cityscapes split found: expected '
            + ' or '.join(repr(osp.join(gt_dir, s)) for s in DEFAULT_SPLITS))
    return found


def list_label_id_files(gt_dir: str, split: str) -> List[str]:
    """List ``<split>/<city>/*_gtFine_labelIds.png`` files.

    Args:
        gt_dir (str): The ``gtFine`` folder.
        split (str): Split name.

    Returns:
        list[str]: Sorted paths.
    """
    pattern = osp.join(glob.escape(gt_dir), glob.escape(split), '*',
                       '*' + LABEL_ID_SUFFIX)
    return sorted(glob.glob(pattern))


def convert_cityscapes(root: str, splits: Optional[Sequence[str]] = None,
                       nproc: int = 1,
                       overwrite: bool = False) -> ConversionSummary:
    """Write ``*_gtFine_labelTrainIds.png`` for every label-id file.

    Args:
        root (str): Cityscapes root holding ``gtFine/``.
        splits (Sequence[str], optional): Splits to convert; default: those
            of ``train`` and ``val`` that exist.
        nproc (int): Worker processes.
        overwrite (bool): Redo files whose output exists.

    Returns:
        ConversionSummary: Counts, skipped files and value warnings.
    """
    require_dir(root, 'Cityscapes root')
    gt_dir = require_dir(osp.join(root, 'gtFine'),
                         'Cityscapes gtFine folder (expected '
                         '<root>/gtFine/{train,val}/<city>/*' +
                         LABEL_ID_SUFFIX + ')')
    chosen = resolve_splits(gt_dir, splits)
    sources = [p for split in chosen
               for p in list_label_id_files(gt_dir, split)]
    if not sources:
        raise ConverterInputError(
            f'No *{LABEL_ID_SUFFIX} files under '
            + ', '.join(osp.join(gt_dir, s, '<city>') for s in chosen))
    lut = cityscapes_id_to_train_id_lut()
    tasks = [
        LabelTask(name=osp.relpath(src, gt_dir), src=src, lut=lut,
                  dst=src[:-len(LABEL_ID_SUFFIX)] + TRAIN_ID_SUFFIX,
                  num_source_ids=CITYSCAPES_MAX_LABEL_ID + 1,
                  overwrite=overwrite, detect_train_ids=True)
        for src in sources
    ]
    results = run_tasks(convert_label_task, tasks, nproc)
    return summarize(f'Cityscapes {root} ({", ".join(chosen)})', results,
                     'Cityscapes label ids (0..33)')
