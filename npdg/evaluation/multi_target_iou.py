"""IoU metric computed separately for each target dataset of one loop.

Samples are grouped by the ``dg_target`` metainfo key that
:class:`npdg.datasets.MultiTargetDataset` stamps on them (not by a substring
of the label path). Areas are stored per sample, so the result does not
depend on the batch size, and BaseMetric's result collection (which drops
the distributed sampler's padding per sample) makes it distributed-safe.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.utils import mkdir_or_exist
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS
from PIL import Image
from prettytable import PrettyTable

TARGET_KEY = 'dg_target'
TARGETS_KEY = 'dg_targets'  # MultiTargetDataset's metainfo: its target names


def _label_map(data: torch.Tensor) -> torch.Tensor:
    """Turn a (1, H, W) or (H, W) label tensor into (H, W).

    Args:
        data (Tensor): Label or prediction map.

    Returns:
        Tensor: The (H, W) map.
    """
    return data.reshape(data.shape[-2:])


@METRICS.register_module()
class MultiTargetIoUMetric(BaseMetric):
    """Per-target IoU/Acc plus their mean over targets.

    For each target ``t`` it returns ``t/aAcc``, ``t/mIoU``, ``t/mAcc``
    (and ``t/mDice``, ``t/mFscore``, ... when asked), in percent rounded to
    2 decimals like mmseg's IoUMetric, and the same keys without prefix
    holding the mean over targets (mean of the unrounded per-target values,
    then rounded), so ``save_best='mIoU'`` selects on the target average.
    It logs one per-class table per target and a summary table.

    Args:
        ignore_index (int): Label value ignored in evaluation.
        iou_metrics (list[str]): Any of ``'mIoU'``, ``'mDice'``,
            ``'mFscore'``.
        nan_to_num (int, optional): Replace NaN per-class values by this.
        beta (int): Weight of recall in the F-score.
        targets (list[str], optional): Expected target names, in report
            order. A sample from another target, or a listed target without
            samples, raises an error. ``None`` takes the targets found, in
            order of first appearance.
        default_target (str): Target of samples without ``dg_target``
            (a plain single dataset).
        collect_device (str): ``'cpu'`` or ``'gpu'``, for distributed
            result collection.
        collect_dir (str, optional): Shared folder for cpu collection.
        output_dir (str, optional): Save every prediction (train ids, PNG) as
            ``<output_dir>/<target>/<image name>.png`` (``tools/test.py --out``).
        format_only (bool): Only save the predictions, compute no metric
            (targets without labels).
        keep_results (bool): Accepted for mmseg's ``tools/test.py --out``
            (which sets it); the predictions are always kept when saved.
        prefix (str, optional): Prefix of every metric key (none by default:
            the keys are ``<target>/mIoU`` and ``mIoU``).
    """

    default_prefix = ''  # keys carry the target name; no "prefix not set" warning

    def __init__(self,
                 ignore_index: int = 255,
                 iou_metrics: Sequence[str] = ('mIoU', ),
                 nan_to_num: Optional[int] = None,
                 beta: int = 1,
                 targets: Optional[Sequence[str]] = None,
                 default_target: str = 'default',
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None,
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 keep_results: bool = False,
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(
            collect_device=collect_device, prefix=prefix,
            collect_dir=collect_dir)
        if kwargs:
            raise TypeError(
                f'MultiTargetIoUMetric got unknown arguments {sorted(kwargs)}.')
        self.ignore_index = ignore_index
        self.metrics = [iou_metrics] if isinstance(iou_metrics, str) else list(
            iou_metrics)
        unknown = set(self.metrics) - {'mIoU', 'mDice', 'mFscore'}
        if unknown:
            raise KeyError(f'MultiTargetIoUMetric: iou_metrics {sorted(unknown)}'
                           " not supported; use 'mIoU', 'mDice', 'mFscore'.")
        self.nan_to_num = nan_to_num
        self.beta = beta
        self.targets = None if targets is None else list(targets)
        if self.targets is not None and len(set(self.targets)) != len(
                self.targets):
            raise ValueError(f'MultiTargetIoUMetric: targets {self.targets} '
                             'contain a duplicate.')
        self.default_target = default_target
        self.output_dir = output_dir
        self.format_only = bool(format_only)
        if format_only and not output_dir:
            raise ValueError('MultiTargetIoUMetric: format_only=True needs output_dir '
                             '(where the predictions go).')
        if output_dir and is_main_process():
            mkdir_or_exist(output_dir)

    @BaseMetric.dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        """Set the dataset meta; check ``targets`` against the dataset's now.

        The loop sets it when it is built (start of training or testing), so a
        misspelt target fails before any target is evaluated.

        Args:
            dataset_meta (dict): The evaluated dataset's metainfo.

        Raises:
            ValueError: If a listed target is not one of the dataset's.
        """
        self._dataset_meta = dataset_meta
        available = (dataset_meta or {}).get(TARGETS_KEY)
        if self.targets is None or available is None:
            return
        unknown = [t for t in self.targets if t not in available]
        if unknown:
            import difflib
            hints = [f'{t!r} -> {m[0]!r}' for t in unknown
                     for m in [difflib.get_close_matches(t, available, n=1)] if m]
            raise ValueError(
                f'MultiTargetIoUMetric: targets {unknown} (val_evaluator/test_evaluator.targets) '
                f'are not targets of the evaluated MultiTargetDataset, whose targets are '
                f'{list(available)}.' + (f' Did you mean {", ".join(hints)}?' if hints else ''))

    def _target_of(self, data_sample: dict) -> str:
        """Return a sample's target name, checking it is expected.

        Args:
            data_sample (dict): One prediction (``SegDataSample.to_dict()``).

        Returns:
            str: The target name.
        """
        name = data_sample.get(TARGET_KEY, self.default_target)
        self._check_known(name, data_sample.get('img_path'))
        return name

    def _check_known(self, name: str, where=None) -> None:
        """Raise if ``name`` is not among the expected targets.

        Args:
            name (str): Target name of a sample.
            where (str, optional): The sample's image path, for the message.
        """
        if self.targets is not None and name not in self.targets:
            raise ValueError(
                f'MultiTargetIoUMetric: sample {where!r} belongs to target '
                f'{name!r}, which is not in targets={self.targets}. Add it '
                "to the metric's targets or check the MultiTargetDataset "
                f'names (samples without {TARGET_KEY!r} count as '
                f'{self.default_target!r}).')

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Store (target, area_intersect, area_union, area_pred, area_label).

        Args:
            data_batch (dict): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): The model's outputs, each with
                ``pred_sem_seg`` and ``gt_sem_seg``.
        """
        num_classes = len(self.dataset_meta['classes'])
        for data_sample in data_samples:
            name = self._target_of(data_sample)
            pred = _label_map(data_sample['pred_sem_seg']['data'])
            if self.output_dir:
                self._save_prediction(name, data_sample, pred)
            if self.format_only:
                continue
            label = _label_map(data_sample['gt_sem_seg']['data']).to(pred)
            areas = IoUMetric.intersect_and_union(pred, label, num_classes,
                                                  self.ignore_index)
            self.results.append((name, ) + tuple(areas))

    def _save_prediction(self, name: str, data_sample: dict, pred: torch.Tensor) -> None:
        """Write one prediction as ``<output_dir>/<target>/<image name>.png``.

        Args:
            name (str): Target name.
            data_sample (dict): The sample (for its image path).
            pred (Tensor): (H, W) predicted train ids.
        """
        folder = osp.join(self.output_dir, name)
        mkdir_or_exist(folder)
        stem = osp.splitext(osp.basename(data_sample.get('img_path') or 'pred'))[0]
        Image.fromarray(pred.cpu().numpy().astype(np.uint8)).save(
            osp.join(folder, f'{stem}.png'))

    def _group(self, results: list) -> Dict[str, List[torch.Tensor]]:
        """Sum the areas of each target.

        Args:
            results (list): Per-sample tuples from :meth:`process`.

        Returns:
            dict[str, list[Tensor]]: Ordered ``{target: [intersect, union,
            pred, label]}``.
        """
        totals: Dict[str, List[torch.Tensor]] = OrderedDict()
        if self.targets is not None:
            totals.update((name, None) for name in self.targets)
        for name, *areas in results:
            self._check_known(name)
            if totals.get(name) is None:
                totals[name] = [a.clone() for a in areas]
            else:
                totals[name] = [t + a for t, a in zip(totals[name], areas)]
        missing = [name for name, areas in totals.items() if areas is None]
        if missing:
            raise ValueError(
                f'MultiTargetIoUMetric: no samples of target(s) {missing} '
                f'(expected targets {self.targets}); refusing to report a '
                'partial mean. Check the dataset names and that every '
                'target dataset is in the evaluated dataloader.')
        return totals

    def _target_metrics(self, areas: List[torch.Tensor]) -> Dict:
        """Compute per-class and summary metrics of one target.

        Args:
            areas (list[Tensor]): Summed intersect, union, pred, label areas.

        Returns:
            dict: ``per_class`` (``{'IoU': array, ...}`` in percent) and
            ``summary`` (``{'aAcc': float, 'mIoU': float, ...}``, unrounded
            percent).
        """
        ret = IoUMetric.total_area_to_metrics(*areas, self.metrics,
                                              self.nan_to_num, self.beta)
        summary = OrderedDict()
        for key, value in ret.items():
            name = key if key == 'aAcc' else 'm' + key
            summary[name] = float(np.nanmean(value) * 100)
        per_class = OrderedDict(
            (key, np.round(value * 100, 2)) for key, value in ret.items()
            if key != 'aAcc')
        return dict(per_class=per_class, summary=summary)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute per-target metrics and their mean over targets.

        Args:
            results (list): Per-sample results of all ranks.

        Returns:
            dict[str, float]: ``<target>/<metric>`` and ``<metric>`` (mean
            over targets), percent with 2 decimals.
        """
        logger = MMLogger.get_current_instance()
        if self.format_only:
            print_log(f'predictions saved under {self.output_dir}/<target>/', logger)
            return OrderedDict()
        per_target = OrderedDict(
            (name, self._target_metrics(areas))
            for name, areas in self._group(results).items())
        for name, result in per_target.items():
            self._log_class_table(name, result['per_class'], logger)
        metrics = OrderedDict()
        for name, result in per_target.items():
            for key, value in result['summary'].items():
                metrics[f'{name}/{key}'] = round(value, 2)
        keys = list(next(iter(per_target.values()))['summary'])
        for key in keys:
            mean = np.mean([r['summary'][key] for r in per_target.values()])
            metrics[key] = round(float(mean), 2)
        self._log_summary_table(per_target, metrics, keys, logger)
        return metrics

    def _log_class_table(self, name: str, per_class: Dict, logger) -> None:
        """Log one target's per-class table.

        Args:
            name (str): Target name.
            per_class (dict): ``{'IoU': array, 'Acc': array, ...}``.
            logger (MMLogger): Where to log.
        """
        table = PrettyTable()
        table.add_column('Class', list(self.dataset_meta['classes']))
        for key, values in per_class.items():
            table.add_column(key, list(values))
        print_log(f'per class results of target {name!r}:', logger)
        print_log('\n' + table.get_string(), logger=logger)

    @staticmethod
    def _log_summary_table(per_target: Dict, metrics: Dict, keys: List[str],
                           logger) -> None:
        """Log the targets x metrics summary with the mean row.

        Args:
            per_target (dict): Per-target results.
            metrics (dict): The returned metrics (rounded).
            keys (list[str]): Summary metric names (aAcc, mIoU, ...).
            logger (MMLogger): Where to log.
        """
        table = PrettyTable()
        table.field_names = ['Target'] + keys
        for name in per_target:
            table.add_row([name] + [metrics[f'{name}/{k}'] for k in keys])
        table.add_row(['mean'] + [metrics[k] for k in keys])
        print_log('multi-target summary:', logger)
        print_log('\n' + table.get_string(), logger=logger)
