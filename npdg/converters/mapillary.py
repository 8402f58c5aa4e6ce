"""Mapillary Vistas v1.2 (66 classes) -> the 19 Cityscapes train ids.

Two on-disk layouts are supported and detected per split::

    <root>/<split>/v1.2/labels/*.png   (combined v1.2 + v2.0 release)
    <root>/<split>/labels/*.png        (original v1.2 archive)

Outputs go to ``<root>/<split>/labels_cs19_<mapping>/<name>.png`` together
with ``mapping.json`` recording the mapping name and its full table; that
file is written last, so its presence means the conversion finished.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

from npdg.datasets.label_maps import (
    MAPILLARY_NUM_CLASSES,
    check_mapillary_mapping_name,
    mapillary_lut,
    mapillary_mapping_record,
)

from .common import (
    ConversionSummary,
    ConverterInputError,
    LabelTask,
    convert_label_task,
    require_dir,
    run_tasks,
    summarize,
)

LABEL_DIR_CANDIDATES = (osp.join('v1.2', 'labels'), 'labels')
MAPPING_FILE = 'mapping.json'
DEFAULT_SPLITS = ('validation',)


def output_dir_name(mapping: str) -> str:
    """Return the output folder name of a mapping.

    Args:
        mapping (str): ``'narrow'`` or ``'wide'``.

    Returns:
        str: ``labels_cs19_<mapping>``.
    """
    return f'labels_cs19_{check_mapillary_mapping_name(mapping)}'


def find_label_dir(root: str, split: str) -> str:
    """Find the v1.2 label folder of a split in either layout.

    Args:
        root (str): Mapillary root.
        split (str): ``validation`` or ``training``.

    Returns:
        str: The label folder.

    Raises:
        ConverterInputError: If neither layout's folder exists (both paths
            are named).
    """
    candidates = [osp.join(root, split, c) for c in LABEL_DIR_CANDIDATES]
    for path in candidates:
        if osp.isdir(path):
            return path
    raise ConverterInputError(
        f'No Mapillary v1.2 labels for split {split!r}: neither '
        f'{candidates[0]!r} (combined v1.2+v2.0 release) nor '
        f'{candidates[1]!r} (original v1.2 archive) exists.')


def _normalized(record: dict) -> dict:
    """Return a record as it reads back from JSON (str keys, lists).

    Args:
        record (dict): JSON-serialisable dict.

    Returns:
        dict: The round-tripped dict.
    """
    return json.loads(json.dumps(record))


def check_existing_mapping(out_dir: str, record: dict,
                           overwrite: bool) -> None:
    """Refuse to mix outputs of a different table in one folder.

    Args:
        out_dir (str): Output folder.
        record (dict): The mapping record about to be written.
        overwrite (bool): Whether all outputs will be rewritten anyway.

    Raises:
        ConverterInputError: If ``out_dir/mapping.json`` records another
            table and ``overwrite`` is False.
    """
    path = osp.join(out_dir, MAPPING_FILE)
    if overwrite or not osp.isfile(path):
        return
    with open(path) as f:
        existing = json.load(f)
    if existing.get('table') != _normalized(record)['table']:
        raise ConverterInputError(
            f'{path} records a different table than mapping '
            f'{record["mapping"]!r} of this version; rerun with --overwrite '
            f'to regenerate every label in {out_dir}.')


def write_mapping_file(out_dir: str, record: dict) -> str:
    """Write ``mapping.json`` into the output folder.

    Args:
        out_dir (str): Output folder.
        record (dict): From ``mapillary_mapping_record``.

    Returns:
        str: The written path.
    """
    path = osp.join(out_dir, MAPPING_FILE)
    with open(path, 'w') as f:
        json.dump(record, f, indent=1)
    return path


def _split_tasks(label_dir: str, out_dir: str, mapping: str,
                 overwrite: bool) -> List[LabelTask]:
    """Build one task per ``*.png`` in a split's label folder.

    Args:
        label_dir (str): Input labels.
        out_dir (str): Output folder.
        mapping (str): Mapping name.
        overwrite (bool): Redo existing outputs.

    Returns:
        list[LabelTask]: Sorted by name.
    """
    lut = mapillary_lut(mapping)
    names = sorted(n for n in os.listdir(label_dir) if n.endswith('.png'))
    return [LabelTask(name=name, src=osp.join(label_dir, name),
                      dst=osp.join(out_dir, name), lut=lut,
                      num_source_ids=MAPILLARY_NUM_CLASSES,
                      overwrite=overwrite)
            for name in names]


def convert_mapillary_split(root: str, split: str, mapping: str = 'narrow',
                            nproc: int = 1,
                            overwrite: bool = False) -> ConversionSummary:
    """Convert one split's labels with one mapping.

    Args:
        root (str): Mapillary root.
        split (str): Split folder name.
        mapping (str): ``'narrow'`` or ``'wide'``.
        nproc (int): Worker processes.
        overwrite (bool): Redo files whose output exists.

    Returns:
        ConversionSummary: Counts, skipped files and value warnings.
    """
    label_dir = find_label_dir(root, split)
    out_dir = osp.join(root, split, output_dir_name(mapping))
    record = mapillary_mapping_record(mapping)
    check_existing_mapping(out_dir, record, overwrite)
    tasks = _split_tasks(label_dir, out_dir, mapping, overwrite)
    if not tasks:
        raise ConverterInputError(f'No *.png label files in {label_dir!r}.')
    os.makedirs(out_dir, exist_ok=True)
    results = run_tasks(convert_label_task, tasks, nproc)
    summary = summarize(f'Mapillary {split} ({mapping}) {label_dir}',
                        results, 'Mapillary v1.2 ids (0..65)')
    summary.notes.append(
        f'Wrote {write_mapping_file(out_dir, record)}.')
    return summary


def convert_mapillary(root: str, mapping: str = 'narrow',
                      splits: Sequence[str] = DEFAULT_SPLITS, nproc: int = 1,
                      overwrite: bool = False) -> Dict[str, ConversionSummary]:
    """Convert the given splits with one mapping.

    Args:
        root (str): Mapillary root.
        mapping (str): ``'narrow'`` or ``'wide'``.
        splits (Sequence[str]): Split folder names.
        nproc (int): Worker processes.
        overwrite (bool): Redo files whose output exists.

    Returns:
        dict[str, ConversionSummary]: split -> summary.

    Raises:
        ConverterInputError: If the root is missing, the mapping unknown or
            a split has no labels (checked for all splits before any work).
    """
    require_dir(root, 'Mapillary root')
    try:
        check_mapillary_mapping_name(mapping)
    except ValueError as err:
        raise ConverterInputError(str(err)) from err
    for split in splits:
        find_label_dir(root, split)
    return {split: convert_mapillary_split(root, split, mapping, nproc,
                                           overwrite)
            for split in splits}
