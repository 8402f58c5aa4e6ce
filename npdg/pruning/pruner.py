"""One structural prune step over channels and heads."""
from dataclasses import dataclass, field

import torch

from npdg.importance import build_importance
from npdg.models.head_pruning import remove_heads
from .optimizer_sync import PruningRecorder
from .selection import select_units
from .units import collect_units


@dataclass
class PruneResult:
    """What a prune step did.

    Attributes:
        layers (list[dict]): Per unit layer: name, kind, units before/after,
            removed indices, scores.
        old_params (dict): Parameters before pruning, by name.
        kept (dict): Kept indices per changed parameter (optimizer sync).
        removed (int): Units removed.
        total (int): Units before the step.
    """
    layers: list = field(default_factory=list)
    old_params: dict = field(default_factory=dict)
    kept: dict = field(default_factory=dict)
    removed: int = 0
    total: int = 0


class UnitPruner:
    """Rank units globally, pick, and physically remove them.

    Channels (coupled groups from torch-pruning's dependency graph: residual
    partners, ASPP concat, depthwise convs, auxiliary head; classifiers never)
    are removed with ``group.prune()``; attention heads whole with
    :func:`npdg.models.remove_heads` (single-head modules are not units).

    Args:
        importance (dict | Importance): Criterion config.
        threshold (float, optional): Only units scoring below it may go
            (used when the criterion says the threshold is meaningful).
        min_keep (int): Minimum units kept per layer.
        min_keep_ratio (float): Minimum fraction kept per layer.
        round_to (int, optional): Keep channel counts multiples of this.
        channels (bool): Prune channels.
        heads (bool): Prune attention heads.
        trace_shape (tuple): (C, H, W) input for tracing.
    """

    def __init__(self, importance=dict(type='BNScaleImportance'), threshold=None, min_keep=1,
                 min_keep_ratio=0.1, round_to=None, channels=True, heads=True,
                 trace_shape=(3, 64, 64)):
        self.importance = build_importance(importance)
        self.threshold = threshold
        self.min_keep, self.min_keep_ratio = int(min_keep), float(min_keep_ratio)
        self.round_to = round_to
        self.channels, self.heads = bool(channels), bool(heads)
        self.trace_shape = tuple(trace_shape)

    def units(self, segmentor):
        """Trace and list the units.

        Args:
            segmentor (nn.Module): Bare segmentor.

        Returns:
            tuple: ``(graph, units)``.
        """
        return collect_units(segmentor, self.trace_shape, self.channels, self.heads)

    def step(self, segmentor, budget, extra_scores=None):
        """Remove up to ``budget`` units.

        Args:
            segmentor (nn.Module): Bare segmentor (pruned in place).
            budget (int): Most units to remove.
            extra_scores (Callable, optional): ``fn(units) -> dict`` of
                per-unit vectors to put in the report (e.g. U, B, w).

        Returns:
            PruneResult: The record.
        """
        graph, units = self.units(segmentor)
        scores = [self.importance(u) for u in units]
        threshold = self.threshold if getattr(self.importance, 'uses_threshold', False) else None
        chosen = select_units(units, scores, budget, threshold, self.min_keep,
                              self.min_keep_ratio, self.round_to)
        result = PruneResult(total=sum(u.num_units for u in units))
        for u, s, idxs in zip(units, scores, chosen):
            entry = dict(name=u.name, kind=u.kind, units_before=u.num_units,
                         units_after=u.num_units - len(idxs), removed=list(idxs),
                         importance=[float(v) for v in s])
            if extra_scores is not None:
                entry.update({k: [float(x) for x in v] for k, v in extra_scores(u).items()})
            result.layers.append(entry)
        with PruningRecorder(segmentor) as rec:
            for u, idxs in zip(units, chosen):
                if not idxs:
                    continue
                if u.kind == 'channel':
                    pruner = graph.get_pruner_of_module(u.root)
                    group = graph.get_pruning_group(u.root, pruner.prune_out_channels, idxs)
                    group.prune()
                else:
                    for pname, (dim, kept) in remove_heads(u.module, idxs).items():
                        rec.add(f'{u.name}.{pname}', dim, kept)
                result.removed += len(idxs)
        result.old_params, result.kept = rec.old_params, rec.kept
        if hasattr(self.importance, 'next_step'):
            self.importance.next_step()
        return result
