"""Several target datasets evaluated in one loop, each sample tagged by target.

MMEngine has one dataset per validation/test loop. ``MultiTargetDataset``
concatenates the target datasets (e.g. Cityscapes, BDD100K, Mapillary) and
stamps every packed sample's metainfo with the name of the target it came
from (key :data:`TARGET_KEY`). The name travels through ``model.val_step``
into the predictions, where :class:`npdg.evaluation.MultiTargetIoUMetric`
groups samples by it, whatever the batch size or label path.

Example config::

    val_dataloader = dict(
        batch_size=1, num_workers=2,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(
            type='MultiTargetDataset',
            datasets=dict(
                cityscapes=dict(type='CityscapesDataset', ...),
                bdd100k=dict(type='BDD100KDataset', ...),
                mapillary=dict(type='Mapillary19Dataset', ...))))
    val_evaluator = dict(type='MultiTargetIoUMetric',
                         targets=['cityscapes', 'bdd100k', 'mapillary'])
"""
import copy
import inspect
import os.path as osp
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset, ConcatDataset
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS

from .gta import check_labels_exist
from .sample_errors import sample_error

#: Metainfo key of a data sample that names its target dataset.
TARGET_KEY = 'dg_target'
#: Dataset metainfo key listing the target names, in order.
TARGETS_KEY = 'dg_targets'


def _pair_names(datasets, names) -> List[tuple]:
    """Pair target names with dataset configs/instances.

    Args:
        datasets (Mapping | Sequence): ``{name: dataset}`` or a list.
        names (Sequence[str], optional): Names for a list of datasets.

    Returns:
        list[tuple[str, object]]: ``(name, dataset)`` in order.

    Raises:
        ValueError: If names are missing, duplicated or malformed.
    """
    if isinstance(datasets, Mapping):
        if names is not None:
            raise ValueError(
                'MultiTargetDataset: pass either datasets as a dict '
                '{name: dataset cfg} or datasets=[...] with names=[...], '
                'not a dict together with names.')
        pairs = list(datasets.items())
    elif isinstance(datasets, Sequence) and not isinstance(datasets, str):
        if names is None or len(names) != len(datasets):
            raise ValueError(
                'MultiTargetDataset: datasets given as a list need names=[...] '
                f'of the same length (got {len(datasets)} datasets and names='
                f'{names!r}); or pass datasets=dict(name=cfg, ...).')
        pairs = list(zip(names, datasets))
    else:
        raise TypeError(
            'MultiTargetDataset: datasets must be a dict {name: dataset cfg} '
            f'or a list (with names=[...]); got {type(datasets).__name__}.')
    if not pairs:
        raise ValueError('MultiTargetDataset: datasets is empty; give at '
                         'least one target dataset.')
    seen = set()
    for name, _ in pairs:
        if not isinstance(name, str) or not name or '/' in name:
            raise ValueError(
                f'MultiTargetDataset: target name {name!r} must be a '
                "non-empty string without '/' (it becomes the metric key "
                "prefix '<name>/mIoU').")
        if name in seen:
            raise ValueError(
                f'MultiTargetDataset: target name {name!r} is used twice.')
        seen.add(name)
    return pairs


def _same_value(ref, cur) -> bool:
    """Compare two metainfo values (sequences element-wise).

    Args:
        ref: Value of the first target.
        cur: Value of another target.

    Returns:
        bool: Whether they are equal.
    """
    if isinstance(ref, (list, tuple, np.ndarray)) and isinstance(
            cur, (list, tuple, np.ndarray)):
        return len(ref) == len(cur) and all(
            np.array_equal(np.asarray(a), np.asarray(b))
            for a, b in zip(ref, cur))
    if isinstance(ref, np.ndarray) or isinstance(cur, np.ndarray):
        return False
    return ref == cur


def _describe(dataset) -> str:
    """Describe where a dataset looks for its files.

    Args:
        dataset: A built dataset.

    Returns:
        str: Its data_root, data_prefix and suffixes (those it has).
    """
    parts = []
    for attr in ('data_root', 'data_prefix', 'img_suffix', 'seg_map_suffix',
                 'ann_file'):
        value = getattr(dataset, attr, None)
        if value:
            parts.append(f'{attr}={value!r}')
    return ', '.join(parts) or f'type={type(dataset).__name__}'


@contextmanager
def _mmseg_scope() -> Iterator[None]:
    """Use the ``mmseg`` default scope when none is set (outside a Runner).

    Sub-dataset pipelines build their transforms through the default scope;
    a Runner sets it from the config, a standalone build needs it set here.
    """
    if DefaultScope.get_current_instance() is None:
        with DefaultScope.overwrite_default_scope('mmseg'):
            yield
    else:
        yield


def _build(name: str, dataset, pipeline=None):
    """Build one target dataset from a config (or take an instance).

    Args:
        name (str): Target name (for error messages).
        dataset (dict | Dataset): Config for mmseg's DATASETS or a dataset.
        pipeline (list, optional): Replaces the target's own pipeline.

    Returns:
        Dataset: The built dataset.
    """
    if isinstance(dataset, Mapping):
        cfg = dict(dataset)
        if pipeline is not None:
            cfg['pipeline'] = copy.deepcopy(list(pipeline))
        with _mmseg_scope():
            if _accepts_lazy_init(cfg['type']):
                # Load in full_init, where an empty target gets a clear error.
                cfg['lazy_init'] = True
            try:
                return DATASETS.build(cfg)
            except FileNotFoundError as err:
                raise FileNotFoundError(
                    f'MultiTargetDataset: target {name!r} could not be built '
                    f"(data_root={cfg.get('data_root')!r}, data_prefix="
                    f"{cfg.get('data_prefix')!r}): {err}. Check the dataset "
                    'layout (docs: data) or fix the paths in the config.'
                ) from err
    if pipeline is not None and hasattr(dataset, 'pipeline'):
        from mmengine.dataset import Compose
        with _mmseg_scope():
            dataset.pipeline = Compose(copy.deepcopy(list(pipeline)))
    if not hasattr(dataset, 'metainfo'):
        raise TypeError(
            f'MultiTargetDataset: target {name!r} must be a dataset config '
            'dict or an mmengine dataset (with metainfo); got '
            f'{type(dataset).__name__}.')
    return dataset


def _accepts_lazy_init(dataset_type) -> bool:
    """Return whether a dataset type takes a ``lazy_init`` argument.

    Args:
        dataset_type (str | type): The config's ``type``.

    Returns:
        bool: True for mmengine ``BaseDataset`` subclasses and the like.
    """
    cls = dataset_type if isinstance(dataset_type,
                                     type) else DATASETS.get(dataset_type)
    if cls is None:
        return False
    if isinstance(cls, type) and issubclass(cls, BaseDataset):
        return True
    try:
        return 'lazy_init' in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def _loads_nothing(dataset) -> bool:
    """Return whether a dataset's annotation list is empty.

    Args:
        dataset: A dataset with ``load_data_list``.

    Returns:
        bool: True if it lists no samples (False if that cannot be told).
    """
    try:
        return len(dataset.load_data_list()) == 0
    except Exception:  # noqa: BLE001 (only used to explain another error)
        return False


def _empty_error(name: str, dataset) -> ValueError:
    """Make the error for a target without samples.

    Args:
        name (str): Target name.
        dataset: The target dataset.

    Returns:
        ValueError: Naming the target, where it looked and what to do.
    """
    return ValueError(
        f'MultiTargetDataset: target {name!r} ({type(dataset).__name__}) '
        f'has no samples; it looked in {_describe(dataset)}. Check the '
        'folder layout and file suffixes, or run the converter for this '
        'dataset (e.g. tools/dataset_converters for Cityscapes '
        '*_gtFine_labelTrainIds.png).')


def init_target(name: str, dataset) -> None:
    """Fully initialize one target dataset and check that it has samples.

    Args:
        name (str): Target name (for error messages).
        dataset: The target dataset.

    Raises:
        FileNotFoundError: If its folders are missing.
        ValueError: If it has no samples.
    """
    try:
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f'MultiTargetDataset: target {name!r} could not be loaded '
            f'({_describe(dataset)}): {err}. Check the dataset layout '
            '(docs: data) or fix the paths in the config.') from err
    except ValueError as err:
        # mmengine's serialization fails on an empty list with a bare
        # numpy error; explain it when that is the cause.
        if _loads_nothing(dataset):
            raise _empty_error(name, dataset) from err
        raise
    if len(dataset) == 0:
        raise _empty_error(name, dataset)
    check_target_labels(name, dataset)


def check_target_labels(name: str, dataset) -> None:
    """Check that every label file of a target exists (at start-up).

    Without this, unconverted labels (e.g. Cityscapes ``*_labelIds.png`` only)
    are found at the first validation, after hours of training.

    Args:
        name (str): Target name.
        dataset: A fully initialised target dataset.

    Raises:
        FileNotFoundError: Naming the target, the missing files and the fix.
    """
    try:
        infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    except Exception:  # noqa: BLE001 - not an mmengine dataset: nothing to check
        return
    hint = (f'Target {name!r} ({type(dataset).__name__}, {_describe(dataset)}): run the '
            'converter for this dataset (python tools/dataset_converters/<dataset>.py ROOT) '
            'or fix data_root/data_prefix/seg_map_suffix in the config.')
    paths = [i.get('seg_map_path') for i in infos if i.get('seg_map_path')]
    if paths and paths[0].endswith('_labelTrainIds.png') and \
            osp.isfile(paths[0].replace('_labelTrainIds.png', '_labelIds.png')) and \
            not osp.isfile(paths[0]):
        hint = (f'Target {name!r}: only the raw *_labelIds.png labels are there; they hold '
                'label ids, not train ids. Convert them first: python '
                f'tools/dataset_converters/cityscapes.py {getattr(dataset, "data_root", "ROOT")}')
    check_labels_exist(infos, hint)


@DATASETS.register_module()
class MultiTargetDataset(ConcatDataset):
    """Concatenation of named target datasets that tags samples by target.

    ``__getitem__`` returns the sub-dataset's packed sample with
    ``data_samples.metainfo['dg_target'] = <target name>`` (for an unpacked
    dict, key ``'dg_target'`` is set on the dict). ``get_data_info`` adds the
    same key. All targets must share ``metainfo['classes']`` (other metainfo
    keys, such as palette or label_map, may differ).

    Args:
        datasets (dict | list): Ordered ``{name: dataset cfg or dataset}``,
            or a list of configs/datasets together with ``names``.
        names (list[str], optional): Target names for a list of datasets.
        lazy_init (bool): Defer loading the annotation lists to
            ``full_init``. Defaults to False.
        check_keys (Sequence[str]): Metainfo keys that must agree between
            targets. Defaults to ``('classes',)``.
        ignore_keys (str | list[str], optional): Keys removed from
            ``check_keys`` (accepted for compatibility with ConcatDataset).
        pipeline (list, optional): One pipeline for every target, replacing
            their own (what ``tools/test.py --tta`` sets:
            ``test_dataloader.dataset.pipeline = tta_pipeline``).

    Raises:
        ValueError: If classes differ between targets, or (at build time, or
            at ``full_init`` with ``lazy_init``) a target has no samples.
    """

    def __init__(self,
                 datasets: Union[Dict, Sequence],
                 names: Optional[Sequence[str]] = None,
                 lazy_init: bool = False,
                 check_keys: Sequence[str] = ('classes', ),
                 ignore_keys: Union[str, List[str], None] = None,
                 pipeline: Optional[Sequence[dict]] = None) -> None:
        pairs = _pair_names(datasets, names)
        self.target_names: List[str] = [name for name, _ in pairs]
        self.datasets = [_build(name, ds, pipeline) for name, ds in pairs]
        if isinstance(ignore_keys, str):
            ignore_keys = [ignore_keys]
        self.ignore_keys = list(ignore_keys or [])
        self.check_keys = [k for k in check_keys if k not in self.ignore_keys]
        self._check_metainfo()
        self._metainfo = dict(self.datasets[0].metainfo,
                              **{TARGETS_KEY: list(self.target_names)})
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def _check_metainfo(self) -> None:
        """Check that every target agrees with the first on ``check_keys``.

        Raises:
            ValueError: Naming both targets and the differing key.
        """
        first_name, first = self.target_names[0], self.datasets[0].metainfo
        for name, dataset in zip(self.target_names[1:], self.datasets[1:]):
            meta = dataset.metainfo
            for key in self.check_keys:
                ref, cur = first.get(key), meta.get(key)
                if not _same_value(ref, cur):
                    raise ValueError(
                        f'MultiTargetDataset: metainfo[{key!r}] of target '
                        f'{name!r} ({type(dataset).__name__}) differs from '
                        f'target {first_name!r} '
                        f'({type(self.datasets[0]).__name__}):\n'
                        f'  {first_name}: {ref}\n  {name}: {cur}\n'
                        'All targets are evaluated in the same classes: map '
                        'the labels (e.g. Mapillary19Dataset for Mapillary) '
                        'or set the same metainfo=dict(classes=...).')

    def full_init(self) -> None:
        """Load every target's annotation list and check none is empty.

        Raises:
            ValueError: If a target has no samples.
        """
        if self._fully_initialized:
            return
        for name, dataset in zip(self.target_names, self.datasets):
            init_target(name, dataset)
        super().full_init()

    @property
    def target_lengths(self) -> Dict[str, int]:
        """Number of samples of each target, in target order.

        Returns:
            dict[str, int]: ``{target name: length}``.
        """
        self.full_init()
        return OrderedDict(
            (name, len(ds))
            for name, ds in zip(self.target_names, self.datasets))

    def target_length(self, name: str) -> int:
        """Return the number of samples of one target.

        Args:
            name (str): Target name.

        Returns:
            int: Its number of samples.
        """
        lengths = self.target_lengths
        if name not in lengths:
            raise KeyError(f'MultiTargetDataset has no target {name!r}; '
                           f'targets are {self.target_names}.')
        return lengths[name]

    def target_of(self, idx: int) -> str:
        """Return the target name of a global index.

        Args:
            idx (int): Index into the concatenation.

        Returns:
            str: The name of the target the sample belongs to.
        """
        dataset_idx, _ = self._get_ori_dataset_idx(idx)
        return self.target_names[dataset_idx]

    def get_data_info(self, idx: int) -> dict:
        """Return the sample's data info with its target name added.

        Args:
            idx (int): Global index.

        Returns:
            dict: The sub-dataset's data info plus ``'dg_target'``.
        """
        info = super().get_data_info(idx)
        info[TARGET_KEY] = self.target_of(idx)
        return info

    def __getitem__(self, idx: int):
        """Return the packed sample stamped with its target name.

        Args:
            idx (int): Global index.

        Returns:
            dict: The sub-dataset's output; ``data_samples`` carries
            ``metainfo['dg_target']``.
        """
        self.full_init()
        dataset_idx, sample_idx = self._get_ori_dataset_idx(idx)
        dataset, name = self.datasets[dataset_idx], self.target_names[dataset_idx]
        try:
            data = dataset[sample_idx]
        except Exception as err:  # noqa: BLE001 - re-raised naming the sample's files
            info = dataset.get_data_info(sample_idx) if hasattr(dataset, 'get_data_info') \
                else {}
            new = sample_error(err, info, f'target {name!r}')
            if new is err:
                raise
            raise new from err
        return stamp_target(data, name)


def stamp_target(data, name: str):
    """Write the target name into a sample's metainfo.

    Args:
        data (dict): A pipeline output; either packed (``data_samples`` is a
            data element, or a list of them) or a plain dict.
        name (str): Target name.

    Returns:
        dict: ``data``, stamped in place.
    """
    samples = data.get('data_samples') if isinstance(data, dict) else None
    if samples is None:
        if isinstance(data, dict):
            data[TARGET_KEY] = name
        return data
    for sample in samples if isinstance(samples, (list, tuple)) else [samples]:
        sample.set_metainfo({TARGET_KEY: name})
    return data
