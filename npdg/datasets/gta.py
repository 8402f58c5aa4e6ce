"""GTA5 in the 19 Cityscapes train-id classes.

Layout (after ``python tools/dataset_converters/gta.py <root>``)::

    <root>/images/00001.png
    <root>/labels/00001_labelTrainIds.png
    <root>/skipped_frames.txt     frames the converter skipped (excluded)

The module also holds the file checks shared with
:class:`npdg.datasets.Mapillary19Dataset` (``require_folder``,
``check_labels_exist``, ``check_not_empty``).
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Set

from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .label_maps import cityscapes_metainfo
from .sample_errors import NamedSampleErrors

GTA_CONVERTER = 'python tools/dataset_converters/gta.py'


def require_folder(path: str, what: str, layout: str) -> None:
    """Raise a clear error if a dataset folder is missing.

    Args:
        path (str): Folder that must exist.
        what (str): Its role, e.g. ``'GTA5 image folder'``.
        layout (str): The expected layout, appended to the message.

    Raises:
        FileNotFoundError: Naming the folder and the expected layout.
    """
    if not osp.isdir(path):
        raise FileNotFoundError(
            f'{what} not found: {path!r} is not a folder. {layout}')


def _listing(folder: str, cache: Dict[str, Set[str]]) -> Set[str]:
    """Return the file names of a folder, listing each folder once.

    Args:
        folder (str): Folder.
        cache (dict[str, set[str]]): Listings made so far.

    Returns:
        set[str]: Names in the folder (empty if it does not exist).
    """
    if folder not in cache:
        cache[folder] = set(os.listdir(folder)) if osp.isdir(folder) \
            else set()
    return cache[folder]


def find_missing_files(paths: Sequence[str]) -> List[str]:
    """Return the paths that do not exist (one listing per folder).

    Args:
        paths (Sequence[str]): Local file paths.

    Returns:
        list[str]: Missing paths, in input order.
    """
    cache: Dict[str, Set[str]] = {}
    return [p for p in paths
            if osp.basename(p) not in _listing(osp.dirname(p), cache)]


def check_labels_exist(data_list: Sequence[dict], hint: str) -> None:
    """Raise if a sample's label file is missing.

    Args:
        data_list (Sequence[dict]): Samples with ``seg_map_path``.
        hint (str): What to do, appended to the message.

    Raises:
        FileNotFoundError: Naming the first missing label files.
    """
    paths = [d['seg_map_path'] for d in data_list if 'seg_map_path' in d]
    missing = find_missing_files(paths)
    if missing:
        shown = ', '.join(repr(p) for p in missing[:3])
        more = f' and {len(missing) - 3} more' if len(missing) > 3 else ''
        raise FileNotFoundError(
            f'{len(missing)} of {len(paths)} label files are missing: '
            f'{shown}{more}. {hint}')


def check_not_empty(data_list: Sequence[dict], img_dir: str,
                    img_suffix: str, detail: str = '') -> None:
    """Raise if a dataset ends up with no samples.

    Args:
        data_list (Sequence[dict]): Samples.
        img_dir (str): Image folder, for the message.
        img_suffix (str): Image suffix, for the message.
        detail (str): What filtered the samples, for the message.

    Raises:
        ValueError: If ``data_list`` is empty.
    """
    if not data_list:
        raise ValueError(
            f'Empty dataset: no *{img_suffix} image in {img_dir!r}'
            f'{detail}.')


def read_name_list(path: str) -> List[str]:
    """Read frame names: the first field of each non-comment line.

    Args:
        path (str): Text file (``00001`` or ``00001.png`` or
            ``00001<TAB>reason`` per line; ``#`` starts a comment).

    Returns:
        list[str]: Names, in file order.
    """
    names = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                names.append(line.split()[0])
    return names


def _strip_suffix(name: str, suffix: str) -> str:
    """Remove ``suffix`` from the end of ``name`` if present.

    Args:
        name (str): Frame name.
        suffix (str): Suffix to remove.

    Returns:
        str: The name without the suffix.
    """
    return name[:-len(suffix)] if suffix and name.endswith(suffix) else name


@DATASETS.register_module()
class GTA5Dataset(NamedSampleErrors, BaseSegDataset):
    """GTA5 with labels converted to the 19 Cityscapes train ids.

    Args:
        split_file (str, optional): Text file of frame names (``00001`` or
            ``00001.png`` per line) restricting the frames; relative to
            ``data_root`` unless absolute. ``None`` uses every frame.
        skip_list (str, optional): The converter's list of skipped frames,
            relative to ``data_root`` (without ``data_root``: to the parent
            of the image folder, where the converter writes it) unless
            absolute; listed frames are excluded (one warning). Ignored if
            the file does not exist; ``None`` disables it.
        img_suffix (str): Image suffix.
        seg_map_suffix (str): Label suffix written by the converter.
        data_prefix (dict): ``img_path`` and ``seg_map_path`` folders.
        **kwargs: Passed to ``mmseg.datasets.BaseSegDataset``.
    """
    METAINFO = cityscapes_metainfo()
    #: Dataset name, converter command and layout, for messages (subclasses change them).
    NAME = 'GTA5'
    CONVERTER = GTA_CONVERTER
    LAYOUT = ('Expected GTA5 layout: <root>/images/00001.png and '
              '<root>/labels/00001_labelTrainIds.png.')

    def __init__(self,
                 split_file: Optional[str] = None,
                 skip_list: Optional[str] = 'skipped_frames.txt',
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 data_prefix: dict = dict(img_path='images',
                                          seg_map_path='labels'),
                 **kwargs) -> None:
        data_root = kwargs.get('data_root')
        self.split_file = self._under_root(split_file, data_root)
        self._skip_list_arg = skip_list
        self.skip_list = skip_list  # resolved in load_data_list
        super().__init__(img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix,
                         data_prefix=data_prefix, **kwargs)

    @staticmethod
    def _under_root(path: Optional[str],
                    data_root: Optional[str]) -> Optional[str]:
        """Resolve a path relative to ``data_root`` unless it is absolute.

        Args:
            path (str, optional): The path.
            data_root (str, optional): Dataset root.

        Returns:
            str, optional: The resolved path.
        """
        if path is None or osp.isabs(path) or data_root is None:
            return path
        return osp.join(data_root, path)

    def _converter_root(self) -> str:
        """Return the GTA5 root to name in converter hints.

        Returns:
            str: ``data_root``, or the parent of the image folder.
        """
        if self.data_root is not None:
            return self.data_root
        img_dir = self.data_prefix.get('img_path') or '.'
        return osp.dirname(osp.normpath(img_dir)) or '.'

    def _frame_name(self, data_info: dict, img_dir: str) -> str:
        """Return a sample's frame name (image path relative, no suffix).

        Args:
            data_info (dict): Sample with ``img_path``.
            img_dir (str): Image folder.

        Returns:
            str: Frame name, e.g. ``00001``.
        """
        rel = osp.relpath(data_info['img_path'], img_dir)
        return _strip_suffix(rel, self.img_suffix)

    def _apply_split_file(self, data_list: List[dict],
                          img_dir: str) -> List[dict]:
        """Keep only the frames named in ``split_file``.

        Args:
            data_list (list[dict]): Samples.
            img_dir (str): Image folder.

        Returns:
            list[dict]: Remaining samples.

        Raises:
            FileNotFoundError: If the split file does not exist.
        """
        if not osp.isfile(self.split_file):
            raise FileNotFoundError(
                f'{self.NAME} split_file not found: {self.split_file!r} (a text '
                f'file of frame names such as 00001, one per line).')
        wanted = {_strip_suffix(n, self.img_suffix)
                  for n in read_name_list(self.split_file)}
        kept = [d for d in data_list
                if self._frame_name(d, img_dir) in wanted]
        if len(kept) < len(wanted):
            print_log(
                f'{len(wanted) - len(kept)} of {len(wanted)} frames of '
                f'{self.split_file} have no image in {img_dir}.',
                logger='current', level=logging.WARNING)
        return kept

    def _apply_skip_list(self, data_list: List[dict],
                         img_dir: str) -> List[dict]:
        """Drop the frames listed in the converter's skip list.

        Args:
            data_list (list[dict]): Samples.
            img_dir (str): Image folder.

        Returns:
            list[dict]: Remaining samples.
        """
        if self.skip_list is None or not osp.isfile(self.skip_list):
            return data_list
        skipped = {_strip_suffix(n, self.img_suffix)
                   for n in read_name_list(self.skip_list)}
        kept = [d for d in data_list
                if self._frame_name(d, img_dir) not in skipped]
        if len(kept) < len(data_list):
            print_log(
                f'{self.NAME}: excluded {len(data_list) - len(kept)} frame(s) '
                f'listed in {self.skip_list}.',
                logger='current', level=logging.WARNING)
        return kept

    def load_data_list(self) -> List[dict]:
        """List the frames, apply the split and skip lists, check labels.

        Returns:
            list[dict]: One dict per frame (``img_path``, ``seg_map_path``,
            ...), as ``BaseSegDataset`` makes them.

        Raises:
            FileNotFoundError: Missing image/label folder or label files.
            ValueError: No frame left.
        """
        root = self._converter_root()
        self.skip_list = self._under_root(self._skip_list_arg, root)
        img_dir = self.data_prefix.get('img_path', '')
        ann_dir = self.data_prefix.get('seg_map_path')
        layout = self.LAYOUT
        require_folder(img_dir, f'{self.NAME} image folder', layout)
        hint = f'Run: {self.CONVERTER} {root}'
        if ann_dir is not None:
            require_folder(ann_dir, f'{self.NAME} label folder', layout + ' ' + hint)
        data_list = super().load_data_list()
        detail = ''
        if self.split_file is not None:
            data_list = self._apply_split_file(data_list, img_dir)
            detail += f' named in {self.split_file!r}'
        data_list = self._apply_skip_list(data_list, img_dir)
        if self.skip_list is not None and osp.isfile(self.skip_list):
            detail += f' outside the skip list {self.skip_list!r}'
        check_not_empty(data_list, img_dir, self.img_suffix, detail)
        check_labels_exist(
            data_list, f'Convert the {self.NAME} labels to train ids: {hint}')
        return data_list
