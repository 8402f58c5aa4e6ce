"""Mapillary Vistas v1.2 in the 19 Cityscapes train-id classes.

Layout (after ``python tools/dataset_converters/mapillary.py <root>
--mapping <mapping>``)::

    <root>/validation/images/*.jpg
    <root>/validation/labels_cs19_<mapping>/*.png
    <root>/validation/labels_cs19_<mapping>/mapping.json

Two 66 -> 19 mappings are in use (``narrow``, ``wide``; see
``npdg.datasets.label_maps``) and they give different numbers, so the
dataset checks that the converted labels were made with the requested one.
"""
import json
import os.path as osp
from typing import List

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .gta import check_labels_exist, check_not_empty, require_folder
from .label_maps import check_mapillary_mapping_name, cityscapes_metainfo, mapillary_id_to_train_id
from .sample_errors import NamedSampleErrors

MAPILLARY_CONVERTER = 'python tools/dataset_converters/mapillary.py'
MAPPING_FILE = 'mapping.json'


def default_label_dir(img_dir: str, mapping: str) -> str:
    """Return the converted-label folder next to an image folder.

    Args:
        img_dir (str): e.g. ``validation/images``.
        mapping (str): Mapping name.

    Returns:
        str: e.g. ``validation/labels_cs19_narrow``.
    """
    return osp.join(osp.dirname(osp.normpath(img_dir)),
                    f'labels_cs19_{mapping}')


def check_mapping_file(label_dir: str, mapping: str, hint: str) -> None:
    """Check that ``label_dir/mapping.json`` records the requested mapping.

    Args:
        label_dir (str): Converted-label folder.
        mapping (str): Requested mapping name.
        hint (str): The converter command, appended to messages.

    Raises:
        FileNotFoundError: If ``mapping.json`` is absent.
        ValueError: If it is unreadable or records another mapping or a
            table different from this version's.
    """
    path = osp.join(label_dir, MAPPING_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path!r} not found: the labels in {label_dir!r} were not (or '
            f'not completely) converted. Run: {hint}')
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f'Cannot read {path!r} ({err}). Run: {hint} '
                         f'--overwrite') from err
    recorded = record.get('mapping')
    if recorded != mapping:
        raise ValueError(
            f'{path!r} records mapping {recorded!r} but mapping={mapping!r} '
            f'was requested. Run: {hint}')
    expected = mapillary_id_to_train_id(mapping)
    table = {int(e['id']): int(e['train_id'])
             for e in record.get('table', []) if e['train_id'] != 255}
    if table != expected:
        raise ValueError(
            f'{path!r} records a different {mapping!r} table than this '
            f'version of npdg. Run: {hint} --overwrite')


@DATASETS.register_module()
class Mapillary19Dataset(NamedSampleErrors, BaseSegDataset):
    """Mapillary Vistas v1.2 with labels mapped to the 19 train ids.

    Args:
        mapping (str): ``'narrow'`` (default, HRDA-family) or ``'wide'``
            (Rein-family); name it in every result.
        img_suffix (str): Image suffix.
        seg_map_suffix (str): Label suffix.
        data_prefix (dict): ``img_path`` and ``seg_map_path``; a
            ``seg_map_path`` of ``None`` means ``labels_cs19_<mapping>``
            next to the image folder (``validation/labels_cs19_narrow``).
        **kwargs: Passed to ``mmseg.datasets.BaseSegDataset``.
    """
    METAINFO = cityscapes_metainfo()

    def __init__(self,
                 mapping: str = 'narrow',
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 data_prefix: dict = dict(img_path='validation/images',
                                          seg_map_path=None),
                 **kwargs) -> None:
        self.mapping = check_mapillary_mapping_name(mapping)
        data_prefix = dict(data_prefix)
        if data_prefix.get('seg_map_path') is None:
            data_prefix['seg_map_path'] = default_label_dir(
                data_prefix.get('img_path', ''), mapping)
        super().__init__(img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix,
                         data_prefix=data_prefix, **kwargs)

    def _converter_hint(self, label_dir: str) -> str:
        """Return the converter command that makes ``label_dir``.

        Args:
            label_dir (str): Converted-label folder.

        Returns:
            str: Shell command.
        """
        split_dir = osp.dirname(osp.normpath(label_dir))
        root = osp.dirname(split_dir) or '.'
        return (f'{MAPILLARY_CONVERTER} {root} --mapping {self.mapping} '
                f'--splits {osp.basename(split_dir)}')

    def load_data_list(self) -> List[dict]:
        """List the frames and check the converted labels.

        Returns:
            list[dict]: One dict per frame, as ``BaseSegDataset`` makes them.

        Raises:
            FileNotFoundError: Missing folders, ``mapping.json`` or labels.
            ValueError: Mapping mismatch or no frame.
        """
        img_dir = self.data_prefix.get('img_path', '')
        label_dir = self.data_prefix['seg_map_path']
        hint = self._converter_hint(label_dir)
        layout = ('Expected Mapillary layout: <root>/validation/images/*.jpg '
                  'and <root>/validation/labels_cs19_<mapping>/*.png.')
        require_folder(img_dir, 'Mapillary image folder', layout)
        require_folder(label_dir, f'Mapillary {self.mapping!r} label folder',
                       f'{layout} Run: {hint}')
        check_mapping_file(label_dir, self.mapping, hint)
        data_list = super().load_data_list()
        check_not_empty(data_list, img_dir, self.img_suffix)
        check_labels_exist(data_list, f'Run: {hint}')
        return data_list
