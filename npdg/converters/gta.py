"""GTA5 label ids -> Cityscapes train ids.

Layout (see the data spec)::

    <root>/images/00001.png                 RGB frame
    <root>/labels/00001.png                 8-bit (palettised) PNG, label ids
    <root>/labels/00001_labelTrainIds.png   written here

Frames whose image and label sizes differ, images without a label, labels
without an image and unreadable labels are skipped and listed in
``<root>/skipped_frames.txt`` (one ``name<TAB>reason`` per line), which
:class:`npdg.datasets.GTA5Dataset` reads to exclude them.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

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

IMAGE_DIR = 'images'
LABEL_DIR = 'labels'
TRAIN_ID_SUFFIX = '_labelTrainIds.png'
SKIP_LIST_NAME = 'skipped_frames.txt'
SPLIT_NAMES = ('train', 'val', 'test')


def _png_stems(folder: str, exclude_suffix: str = '') -> Dict[str, str]:
    """Map the stem of every ``.png`` file in a folder to its path.

    Args:
        folder (str): Folder to list (not recursive).
        exclude_suffix (str): File names ending with this are left out.

    Returns:
        dict[str, str]: stem -> path.
    """
    stems = {}
    for entry in os.scandir(folder):
        name = entry.name
        if not name.endswith('.png') or not entry.is_file():
            continue
        if exclude_suffix and name.endswith(exclude_suffix):
            continue
        stems[name[:-len('.png')]] = entry.path
    return stems


def list_gta_frames(root: str, image_dir: str = IMAGE_DIR, label_dir: str = LABEL_DIR,
                    what: str = 'GTA5') -> Tuple[Dict[str, Tuple[str, str]],
                                                 List[Tuple[str, str]]]:
    """Pair GTA5 (or SYNTHIA) images with their label files.

    Args:
        root (str): GTA5 root holding ``images/`` and ``labels/``.
        image_dir (str): Image folder under ``root``.
        label_dir (str): Label folder under ``root``.
        what (str): Dataset name for messages.

    Returns:
        tuple: ``pairs`` (name -> (image path, label path)) and ``unpaired``
        (list of (name, reason)) for images without a label and labels
        without an image.

    Raises:
        ConverterInputError: If the root or one of its folders is missing.
    """
    require_dir(root, f'{what} root')
    layout = (f'expected {root}/{image_dir}/*.png and '
              f'{root}/{label_dir}/*.png')
    images = _png_stems(require_dir(osp.join(root, image_dir),
                                    f'{what} image folder ({layout})'))
    labels = _png_stems(require_dir(osp.join(root, label_dir),
                                    f'{what} label folder ({layout})'),
                        exclude_suffix=TRAIN_ID_SUFFIX)
    pairs = {name: (images[name], labels[name])
             for name in sorted(images.keys() & labels.keys())}
    unpaired = [(name, 'image without label')
                for name in sorted(images.keys() - labels.keys())]
    unpaired += [(name, 'label without image')
                 for name in sorted(labels.keys() - images.keys())]
    return pairs, sorted(unpaired)


def write_skip_list(path: str, skipped: Sequence[Tuple[str, str]]) -> None:
    """Write the skipped frames, one ``name<TAB>reason`` per line.

    Args:
        path (str): Output text file.
        skipped (Sequence[tuple[str, str]]): (name, reason) pairs.
    """
    with open(path, 'w') as f:
        f.write('# GTA5 frames skipped by tools/dataset_converters/gta.py '
                '(name<TAB>reason); GTA5Dataset excludes them.\n')
        for name, reason in skipped:
            f.write(f'{name}\t{reason}\n')


def convert_gta(root: str, nproc: int = 1,
                overwrite: bool = False) -> ConversionSummary:
    """Write ``labels/<name>_labelTrainIds.png`` for every usable frame.

    Args:
        root (str): GTA5 root.
        nproc (int): Worker processes.
        overwrite (bool): Redo frames whose output exists.

    Returns:
        ConversionSummary: Counts, skipped frames (also written to
        ``<root>/skipped_frames.txt``) and value warnings.
    """
    pairs, unpaired = list_gta_frames(root)
    if not pairs:
        raise ConverterInputError(
            f'No GTA5 frame has both {root}/{IMAGE_DIR}/<name>.png and '
            f'{root}/{LABEL_DIR}/<name>.png ({len(unpaired)} unpaired '
            f'file(s)).')
    lut = cityscapes_id_to_train_id_lut()
    tasks = [
        LabelTask(name=name, src=label, image=image, lut=lut,
                  dst=osp.join(root, LABEL_DIR, name + TRAIN_ID_SUFFIX),
                  num_source_ids=CITYSCAPES_MAX_LABEL_ID + 1,
                  overwrite=overwrite, detect_train_ids=True)
        for name, (image, label) in pairs.items()
    ]
    results = run_tasks(convert_label_task, tasks, nproc)
    return finish_summary(root, summarize(f'GTA5 {root}', results,
                                          'Cityscapes/GTA5 label ids (0..33)'), unpaired)


def finish_summary(root: str, summary: ConversionSummary,
                   unpaired: Sequence[Tuple[str, str]]) -> ConversionSummary:
    """Add the unpaired frames to a summary and write ``<root>/skipped_frames.txt``.

    Args:
        root (str): Dataset root.
        summary (ConversionSummary): The label conversion's summary.
        unpaired (Sequence[tuple]): ``(name, reason)`` of frames without a pair.

    Returns:
        ConversionSummary: The same summary.
    """
    summary.skipped = sorted(summary.skipped + list(unpaired))
    skip_path = osp.join(root, SKIP_LIST_NAME)
    write_skip_list(skip_path, summary.skipped)
    summary.notes.append(f'Skip list written to {skip_path} '
                         f'({len(summary.skipped)} frame(s)).')
    return summary


def _load_split_ids(split_mat: str) -> Dict[str, List[int]]:
    """Read the frame numbers of the official GTA5 ``split.mat``.

    Args:
        split_mat (str): Path of ``split.mat`` (keys ``trainIds``,
            ``valIds``, ``testIds``).

    Returns:
        dict[str, list[int]]: split name -> frame numbers.

    Raises:
        ConverterInputError: If scipy is missing, or the file is missing or
            lacks the expected keys.
    """
    try:
        from scipy.io import loadmat
    except ImportError as err:
        raise ConverterInputError(
            '--split-mat needs scipy to read .mat files: pip install '
            'scipy') from err
    if not osp.isfile(split_mat):
        raise ConverterInputError(f'split file not found: {split_mat!r}')
    content = loadmat(split_mat)
    missing = [f'{s}Ids' for s in SPLIT_NAMES if f'{s}Ids' not in content]
    if missing:
        found = sorted(k for k in content if not k.startswith('__'))
        raise ConverterInputError(
            f'{split_mat!r} lacks {missing}; found {found}. Expected the '
            f'official GTA5 split.mat (trainIds, valIds, testIds).')
    return {s: [int(i) for i in content[f'{s}Ids'].ravel()]
            for s in SPLIT_NAMES}


def write_gta_split_lists(root: str, split_mat: str,
                          out_dir: Optional[str] = None) -> Dict[str, int]:
    """Write ``train.txt``, ``val.txt`` and ``test.txt`` frame-name lists.

    Frame number ``i`` becomes the name ``f'{i:05d}'`` (``00001``), the GTA5
    file naming.

    Args:
        root (str): GTA5 root (used to count names without an image).
        split_mat (str): Official ``split.mat``.
        out_dir (str, optional): Where to write the lists; defaults to
            ``root``.

    Returns:
        dict[str, int]: split name -> number of names written.
    """
    ids = _load_split_ids(split_mat)
    out_dir = out_dir or root
    image_dir = osp.join(root, IMAGE_DIR)
    images = set(_png_stems(image_dir)) if osp.isdir(image_dir) else set()
    counts = {}
    for split, numbers in ids.items():
        names = [f'{i:05d}' for i in numbers]
        with open(osp.join(out_dir, f'{split}.txt'), 'w') as f:
            f.writelines(name + '\n' for name in names)
        counts[split] = len(names)
        absent = [n for n in names if n not in images]
        if absent:
            print(f'Warning: {len(absent)} {split} name(s) have no image in '
                  f'{image_dir} (e.g. {absent[0]}).')
    return counts
