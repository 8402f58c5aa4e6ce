"""Pieces shared by the label converters.

A converter lists its frames, builds one :class:`LabelTask` per frame, runs
:func:`convert_label_task` over them with a progress bar
(:func:`run_tasks`), and reports a :class:`ConversionSummary`.

Label PNGs are read so that palettised images give their palette indices
(PIL mode ``'P'`` -> ``np.array`` gives indices; they are never converted to
RGB) and outputs are written as 8-bit grayscale PNGs, atomically (a temporary
file renamed into place), so an interrupted run never leaves a half-written
file that a later run would count as done.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

#: Largest Cityscapes label id; GTA5 uses the same ids.
CITYSCAPES_MAX_LABEL_ID = 33

# Statuses of a frame.
CONVERTED = 'converted'
DONE = 'done'
SKIPPED = 'skipped'


class ConverterInputError(ValueError):
    """Bad converter input (missing folder, wrong layout, bad option)."""


class LabelReadError(ValueError):
    """A label PNG cannot be read as an 8-bit id image."""


def require_dir(path: str, what: str) -> str:
    """Check that a folder exists.

    Args:
        path (str): Folder to check.
        what (str): What the folder should hold, for the error message.

    Returns:
        str: ``path``.

    Raises:
        ConverterInputError: If ``path`` is not a folder.
    """
    if not osp.isdir(path):
        raise ConverterInputError(
            f'{what} not found: {path!r} is not a folder.')
    return path


def read_label_png(path: str) -> np.ndarray:
    """Read an id-coded label PNG as a 2-D uint8 array of ids.

    Palettised (``'P'``) images give their palette indices, grayscale
    (``'L'``) images their gray values, 16/32-bit grayscale images their
    values when they all fit in 0..255.

    Args:
        path (str): PNG file.

    Returns:
        np.ndarray: uint8 array of shape (H, W).

    Raises:
        LabelReadError: If the file cannot be decoded, or is colour-coded
            (RGB) rather than id-coded, or holds values above 255.
    """
    try:
        with Image.open(path) as img:
            mode = img.mode
            array = np.array(img)
    except (OSError, SyntaxError, ValueError) as err:
        raise LabelReadError(f'cannot read {path!r}: {err}') from err
    if mode in ('P', 'L'):
        return array
    if mode == '1':
        return array.astype(np.uint8)
    if mode.startswith('I'):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise LabelReadError(
                f'{path!r} ({mode}) holds values outside 0..255; expected '
                f'label ids.')
        return array.astype(np.uint8)
    raise LabelReadError(
        f'{path!r} is a {mode} image; expected an 8-bit palettised or '
        f'grayscale PNG whose pixel values are label ids (colour-coded '
        f'labels are not supported).')


def image_size(path: str) -> Tuple[int, int]:
    """Return an image's (width, height) from its header only.

    Args:
        path (str): Image file.

    Returns:
        tuple[int, int]: (width, height).

    Raises:
        LabelReadError: If the file cannot be opened as an image.
    """
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, SyntaxError, ValueError) as err:
        raise LabelReadError(f'cannot read {path!r}: {err}') from err


def write_label_png(path: str, label: np.ndarray) -> None:
    """Write a uint8 label array as an 8-bit grayscale PNG, atomically.

    Args:
        path (str): Output file (its folder is created if needed).
        label (np.ndarray): uint8 array of shape (H, W).
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp_path = f'{path}.tmp'
    Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8),
                    mode='L').save(tmp_path, format='PNG')
    os.replace(tmp_path, path)


@dataclass(frozen=True)
class LabelTask:
    """One label file to convert.

    Attributes:
        name (str): Frame name used in reports.
        src (str): Input label PNG.
        dst (str): Output train-id PNG.
        lut (np.ndarray): uint8 (256,) lookup table applied to the ids.
        num_source_ids (int): Ids ``>= num_source_ids`` are unknown to the
            source label set (reported; the LUT maps them to 255).
        overwrite (bool): Convert even if ``dst`` exists.
        image (str, optional): Image file whose size must match the label;
            ``None`` skips the size check.
        detect_train_ids (bool): Report files whose values look like train
            ids already (only 0..18 and 255).
        read (Callable, optional): ``fn(path) -> uint8 (H, W) ids`` for label
            files that are not 8-bit id PNGs (SYNTHIA's 16-bit RGB);
            default :func:`read_label_png`.
    """
    name: str
    src: str
    dst: str
    lut: np.ndarray
    num_source_ids: int
    overwrite: bool = False
    image: Optional[str] = None
    detect_train_ids: bool = False
    read: Optional[Callable] = None


@dataclass(frozen=True)
class FrameResult:
    """Outcome of one :class:`LabelTask`.

    Attributes:
        name (str): Frame name.
        status (str): ``'converted'``, ``'done'`` (output existed) or
            ``'skipped'``.
        reason (str): Why the frame was skipped.
        unknown_ids (tuple[int, ...]): Source values outside the label set.
        looks_like_train_ids (bool): Values were only 0..18 and 255.
    """
    name: str
    status: str
    reason: str = ''
    unknown_ids: Tuple[int, ...] = ()
    looks_like_train_ids: bool = False


def present_values(label: np.ndarray) -> np.ndarray:
    """Return the sorted distinct values of a uint8 label array.

    Args:
        label (np.ndarray): uint8 array.

    Returns:
        np.ndarray: Sorted distinct values.
    """
    return np.flatnonzero(np.bincount(label.ravel(), minlength=256))


def _looks_like_train_ids(values: np.ndarray) -> bool:
    """Whether values are only train ids 0..18 plus 255 (with 255 present).

    Args:
        values (np.ndarray): Distinct values of a label file.

    Returns:
        bool: True when the file was probably converted already.
    """
    return bool(255 in values and np.all((values <= 18) | (values == 255)))


def _size_mismatch(task: LabelTask, label_size: Tuple[int, int]) -> str:
    """Return a reason string if the task's image and label sizes differ.

    Args:
        task (LabelTask): The task (``task.image`` must be set).
        label_size (tuple[int, int]): Label (width, height).

    Returns:
        str: Empty when sizes agree.
    """
    img_w, img_h = image_size(task.image)
    if (img_w, img_h) == tuple(label_size):
        return ''
    return (f'size mismatch: image {img_w}x{img_h}, '
            f'label {label_size[0]}x{label_size[1]}')


def convert_label_task(task: LabelTask) -> FrameResult:
    """Convert one label file (module-level so worker processes can run it).

    Args:
        task (LabelTask): What to convert.

    Returns:
        FrameResult: The outcome; problems with the frame are reported as
        ``'skipped'`` with a reason rather than raised.
    """
    try:
        if not task.overwrite and osp.exists(task.dst):
            if task.image is not None:
                reason = _size_mismatch(task, image_size(task.src))
                if reason:
                    return FrameResult(task.name, SKIPPED, reason)
            return FrameResult(task.name, DONE)
        label = (task.read or read_label_png)(task.src)
        if task.image is not None:
            reason = _size_mismatch(task, (label.shape[1], label.shape[0]))
            if reason:
                return FrameResult(task.name, SKIPPED, reason)
        values = present_values(label)
        unknown = tuple(int(v) for v in values if v >= task.num_source_ids)
        suspicious = task.detect_train_ids and _looks_like_train_ids(values)
        write_label_png(task.dst, task.lut[label])
    except (LabelReadError, OSError) as err:
        return FrameResult(task.name, SKIPPED, str(err))
    return FrameResult(task.name, CONVERTED, unknown_ids=unknown,
                       looks_like_train_ids=suspicious)


def run_tasks(func: Callable, tasks: Sequence, nproc: int = 1) -> list:
    """Run ``func`` over ``tasks`` with a progress bar.

    Args:
        func (Callable): Module-level function of one task.
        tasks (Sequence): The tasks.
        nproc (int): Worker processes; 1 runs in this process.

    Returns:
        list: ``func``'s results in task order.
    """
    from mmengine.utils import track_parallel_progress, track_progress

    if not tasks:
        return []
    if nproc < 1:
        raise ConverterInputError(f'nproc must be >= 1, got {nproc}.')
    if nproc == 1 or len(tasks) == 1:
        return track_progress(func, list(tasks))
    chunksize = max(1, len(tasks) // (nproc * 16))
    return track_parallel_progress(func, list(tasks), nproc,
                                   chunksize=chunksize)


@dataclass
class ConversionSummary:
    """Counts and lists reported at the end of a conversion.

    Attributes:
        title (str): What was converted (e.g. ``'GTA5 data/gta'``).
        converted (int): Frames written in this run.
        already_done (int): Frames whose output existed.
        skipped (list[tuple[str, str]]): (name, reason) of skipped frames.
        warnings (list[str]): Things the user should check.
        notes (list[str]): Plain information (e.g. files written).
    """
    title: str
    converted: int = 0
    already_done: int = 0
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def format(self, max_listed: int = 50) -> str:
        """Return a human-readable report.

        Args:
            max_listed (int): Skipped frames listed at most.

        Returns:
            str: Multi-line report.
        """
        lines = [f'{self.title}: {self.converted} converted, '
                 f'{self.already_done} already done, '
                 f'{len(self.skipped)} skipped.']
        if self.skipped:
            lines.append(f'Skipped frames ({len(self.skipped)}):')
            for name, reason in self.skipped[:max_listed]:
                lines.append(f'  {name}: {reason}')
            if len(self.skipped) > max_listed:
                lines.append(f'  ... and {len(self.skipped) - max_listed} '
                             f'more')
        lines.extend(f'Warning: {w}' for w in self.warnings)
        lines.extend(self.notes)
        return '\n'.join(lines)


def _names_preview(names: Sequence[str], limit: int = 5) -> str:
    """Return up to ``limit`` names joined with commas, plus '...'.

    Args:
        names (Sequence[str]): Names.
        limit (int): How many to show.

    Returns:
        str: The preview.
    """
    shown = ', '.join(names[:limit])
    return shown + (', ...' if len(names) > limit else '')


def summarize(title: str, results: Sequence[FrameResult],
              source_kind: str) -> ConversionSummary:
    """Collect frame results into a summary with value warnings.

    Args:
        title (str): Summary title.
        results (Sequence[FrameResult]): Per-frame outcomes.
        source_kind (str): Name of the expected source ids for warnings,
            e.g. ``'Cityscapes label ids (0..33)'``.

    Returns:
        ConversionSummary: The summary.
    """
    summary = ConversionSummary(title)
    unknown = {}
    suspicious = []
    for result in results:
        if result.status == CONVERTED:
            summary.converted += 1
        elif result.status == DONE:
            summary.already_done += 1
        else:
            summary.skipped.append((result.name, result.reason))
        for value in result.unknown_ids:
            unknown.setdefault(value, []).append(result.name)
        if result.looks_like_train_ids:
            suspicious.append(result.name)
    for value, names in sorted(unknown.items()):
        summary.warnings.append(
            f'value {value} is not one of the {source_kind} (mapped to 255) '
            f'in {len(names)} file(s): {_names_preview(names)}')
    if suspicious:
        summary.warnings.append(
            f'{len(suspicious)} file(s) hold only values 0..18 and 255, '
            f'which looks like train ids rather than {source_kind}; check '
            f'that the inputs are the raw label ids: '
            f'{_names_preview(suspicious)}')
    return summary


def write_holdout_lists(root: str, image_dir: str, val_fraction: float = 0.15
                        ) -> Tuple[int, int]:
    """Write ``train.txt``/``val.txt``: the last frames (by name) held out.

    For sources without an official split (SYNTHIA, the synthetic GTA5): the
    held-out frames are source validation data, never seen in training.

    Args:
        root (str): Dataset root (the lists are written there).
        image_dir (str): Image folder under ``root`` (``*.png`` frames).
        val_fraction (float): Share of the frames held out, in (0, 1).

    Returns:
        tuple[int, int]: Number of train and val frames.

    Raises:
        ConverterInputError: If there are fewer than two frames.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got {val_fraction}')
    folder = require_dir(osp.join(root, image_dir), 'image folder')
    names = sorted(osp.splitext(f)[0] for f in os.listdir(folder) if f.endswith('.png'))
    if len(names) < 2:
        raise ConverterInputError(f'{folder}: {len(names)} frame(s) cannot be split into '
                                  f'train and val.')
    n_val = min(len(names) - 1, max(1, int(round(len(names) * val_fraction))))
    splits = dict(train=names[:-n_val], val=names[-n_val:])
    for split, items in splits.items():
        with open(osp.join(root, f'{split}.txt'), 'w') as f:
            f.write('\n'.join(items) + '\n')
    return len(splits['train']), len(splits['val'])


def run_converter(convert: Callable[[], 'ConversionSummary']) -> int:
    """Run a converter for a command-line tool: print its summary, or the error.

    Args:
        convert (Callable): ``fn() -> ConversionSummary``.

    Returns:
        int: Exit status: 0, or 2 after a :class:`ConverterInputError` (printed
        to stderr as ``error: ...``).
    """
    import sys
    try:
        summary = convert()
    except ConverterInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(summary.format())
    return 0
