"""One structural prune step over channels and heads."""
import copy
import re
from dataclasses import dataclass, field

import torch
from mmengine.logging import print_log

from npdg.importance import build_importance
from npdg.models.head_pruning import remove_heads, sync_embed_dims

from .cost import cost_weighted, unit_costs
from .fold import fold_constant_channels
from .optimizer_sync import PruningRecorder
from .selection import select_units, select_units_per_layer
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
        shortfall (dict, optional): Set when the threshold left fewer
            candidates than the budget (what happened and the policy used).
        folded (dict): Removed constant channels folded into their
            consumers (:func:`npdg.pruning.fold.fold_constant_channels`).
    """
    layers: list = field(default_factory=list)
    old_params: dict = field(default_factory=dict)
    kept: dict = field(default_factory=dict)
    removed: int = 0
    total: int = 0
    shortfall: dict = None
    folded: dict = field(default_factory=dict)


def _same_on_every_rank(scores):
    """Rank 0's scores on every rank (data criteria on GPUs are not bit-reproducible
    across devices; every rank must remove the same units)."""
    from mmengine.dist import broadcast_object_list, get_world_size
    if get_world_size() <= 1:
        return scores
    box = [[s.cpu() for s in scores]]
    broadcast_object_list(box, src=0)
    return box[0]


def zero_scale_units(units):
    """Which units have every scale at exactly 0 (None for units without scales).

    A channel unit's scales are the BN weights of its coupled group (all must
    be 0), a head's its gate. Sparse training's proximal shrink sets scales
    to exactly 0; the prune report compares their count with what the budget
    removes.

    Args:
        units (ChannelUnits | HeadUnits): One layer's units.

    Returns:
        Tensor | None: (num_units,) bool.
    """
    if units.kind == 'head':
        return units.module.head_gate.detach().cpu() == 0
    if not getattr(units, 'bns', None):
        return None
    return units.gather(lambda name, bn: bn.weight.abs(), reduction='max') == 0


class ThresholdShortfallError(RuntimeError):
    """The threshold left fewer candidates than the budget (``shortfall='error'``)."""


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
        shortfall (str): What to do when the threshold leaves fewer
            candidates than the budget: ``'ratio'`` (warn loudly, then fill the
            budget by rank as if there were no threshold) or ``'error'``
            (stop with :class:`ThresholdShortfallError`).
        scope (str): ``'global'`` (rank all units of all layers together) or
            ``'layer'`` (every layer loses the same share of its units,
            ranked within the layer: the budget is split in proportion to
            the layers' sizes).
        widths (bool): Prune channel groups without BN too (Mix-FFN hidden
            channels, embedding widths; grouped global pruning).
        flops_aware (bool): Rank by score per relative cost: each unit's
            score is divided by what removing it saves (multiply-accumulates
            at ``cost_shape``, :mod:`npdg.pruning.cost`) over the mean unit's
            saving. The absolute threshold does not apply to such ratios.
        cost_shape (tuple, optional): (C, H, W) at which costs are counted
            (``trace_shape`` when None).
        fold_constants (bool): Before removing channels whose scales are all
            0, fold the constant they emit into their consumers' bias or BN
            running mean (:mod:`npdg.pruning.fold`).
        ignored_units (Sequence[str]): Regular expressions; a unit whose
            name (its root layer, e.g. ``backbone._blocks.3._project_conv``)
            matches one (``re.search``) is never scored nor removed (as
            Torch-Pruning's ``ignored_layers``). Every pattern must match a
            unit of the model.
    """

    SHORTFALL_POLICIES = ('ratio', 'error')
    SCOPES = ('global', 'layer')

    def __init__(self, importance=dict(type='BNScaleImportance'), threshold=None, min_keep=1,
                 min_keep_ratio=0.1, round_to=None, channels=True, heads=True,
                 trace_shape=(3, 64, 64), shortfall='ratio', scope='global', widths=False,
                 flops_aware=False, cost_shape=None, fold_constants=True, ignored_units=()):
        if shortfall not in self.SHORTFALL_POLICIES:
            raise ValueError(f'UnitPruner: shortfall must be one of {self.SHORTFALL_POLICIES}, '
                             f'got {shortfall!r}.')
        if scope not in self.SCOPES:
            raise ValueError(f'UnitPruner: scope must be one of {self.SCOPES}, got {scope!r}.')
        self.shortfall = shortfall
        self.scope = scope
        self.importance = build_importance(importance)  # checked there
        self.threshold = threshold
        self.min_keep, self.min_keep_ratio = int(min_keep), float(min_keep_ratio)
        self.round_to = round_to
        self.channels, self.heads, self.widths = bool(channels), bool(heads), bool(widths)
        kinds = {k for k, on in (('channel', self.channels), ('head', self.heads),
                                 ('width', self.widths)) if on}
        supported = set(getattr(self.importance, 'unit_kinds', ('channel', 'head')))
        if kinds - supported:
            raise ValueError(
                f'{type(self.importance).__name__} cannot score {sorted(kinds - supported)} '
                f'units (it scores {sorted(supported)}): a unit without BN has no scale or '
                'statistics. Use a weight or gradient criterion (L1, L2, Taylor, Hessian, '
                "random, domain-risk variance) or drop 'width' from unit_types.")
        self.trace_shape = tuple(trace_shape)
        self.flops_aware = bool(flops_aware)
        self.fold_constants = bool(fold_constants)
        self.cost_shape = tuple(cost_shape) if cost_shape is not None else self.trace_shape
        if isinstance(ignored_units, str):
            ignored_units = [ignored_units]
        self.ignored_units = tuple(ignored_units or ())
        try:
            self._ignored = [re.compile(p) for p in self.ignored_units]
        except (re.error, TypeError) as err:
            raise ValueError(f'UnitPruner: ignored_units must be regular expressions, got '
                             f'{self.ignored_units!r} ({err}).') from None

    def units(self, segmentor, remember=True):
        """The units of the segmentor's current structure (traced once per structure).

        The graph and units are kept and reused while the structure is the
        same (same modules, same parameter shapes); a prune, a resize on
        resume or a module swap changes the structure and they are rebuilt.

        Args:
            segmentor (nn.Module): Bare segmentor.
            remember (bool): Keep them for the next call (False for a
                throw-away trial copy).

        Returns:
            tuple: ``(graph, units)``.
        """
        if not remember:
            return self._kept_units(collect_units(segmentor, self.trace_shape, self.channels,
                                                  self.heads, self.widths))
        key = (id(segmentor), tuple((name, id(m), tuple(tuple(p.shape) for p in
                                                          m.parameters(recurse=False)))
                                    for name, m in segmentor.named_modules()))
        if getattr(self, '_units_key', None) != key:
            self._units = self._kept_units(collect_units(
                segmentor, self.trace_shape, self.channels, self.heads, self.widths))
            self._units_key = key
        return self._units

    def _kept_units(self, traced):
        """Drop the units ``ignored_units`` names (each pattern must name one)."""
        graph, units = traced
        if not self._ignored:
            return graph, units
        for pattern in self._ignored:
            if not any(pattern.search(u.name) for u in units):
                raise ValueError(
                    f'UnitPruner: ignored_units pattern {pattern.pattern!r} matches no unit of '
                    f'the model (units are named by their root layer, e.g. '
                    f'{", ".join(u.name for u in units[:3])}); fix or remove it.')
        return graph, [u for u in units if not any(p.search(u.name) for p in self._ignored)]

    def score(self, units, context=None):
        """Score every layer's units with the criterion.

        Args:
            units (list): The units (of the model ``context`` holds).
            context (ScoringContext, optional): The step's scoring context
                (needed by data-driven criteria).

        Returns:
            list[Tensor]: One float64 vector per layer; in a distributed run
            rank 0's, broadcast to every rank (so all remove the same units).

        Raises:
            ValueError: When a criterion returns the wrong length or a
                non-finite score.
        """
        if context is not None:
            context.units = units
        scores = []
        for u in units:
            value = self.importance(u, context)
            s = torch.as_tensor(value, dtype=torch.float64).flatten()
            if s.numel() != u.num_units or not torch.isfinite(s).all():
                raise ValueError(f'{type(self.importance).__name__} gave {s.numel()} scores '
                                 f'(finite: {bool(torch.isfinite(s).all())}) for {u.name}, '
                                 f'which has {u.num_units} units.')
            scores.append(s)
        return _same_on_every_rank(scores)

    def _select(self, units, scores, budget, threshold, args):
        if self.scope == 'global':
            return select_units(units, scores, budget, threshold, *args)
        return select_units_per_layer(units, scores, budget, threshold, *args)

    def choose(self, units, scores, budget):
        """Pick up to ``budget`` units: threshold first, then the shortfall policy.

        Args:
            units (list): The units.
            scores (list[Tensor]): Their importance.
            budget (int): Units to remove.

        Returns:
            tuple: ``(chosen, shortfall)``; ``shortfall`` is None when the
            threshold left enough candidates (or there is no threshold).

        Raises:
            ThresholdShortfallError: With ``shortfall='error'``.
        """
        threshold = self.threshold if getattr(self.importance, 'uses_threshold', False) \
            and not self.flops_aware else None
        args = (self.min_keep, self.min_keep_ratio, self.round_to)
        chosen = self._select(units, scores, budget, threshold, args)
        taken = sum(len(c) for c in chosen)
        if threshold is None or taken >= budget:
            return chosen, None
        below = sum(int((torch.as_tensor(v) < threshold).sum()) for v in scores)
        shortfall = dict(budget=int(budget), below_threshold=below, removable_below=taken,
                         threshold=float(threshold), policy=self.shortfall)
        msg = (f'[npdg] SHORTFALL: the threshold {threshold} leaves {below} units below it '
               f'({taken} removable under the per-layer minimum) but the budget is {budget}')
        if self.shortfall == 'error':
            raise ThresholdShortfallError(
                msg + '. Train longer or with a larger sparsity coefficient s, lower the ratio, '
                "or set UnitPruningHook(shortfall='ratio') to fill the budget by rank.")
        print_log(msg + '; policy "ratio": the budget is filled by rank above the threshold.',
                  logger='current', level=30)
        chosen = self._select(units, scores, budget, None, args)
        return chosen, shortfall

    def step(self, segmentor, budget, extra_scores=None, final=True, context=None,
             scores=None):
        """Remove up to ``budget`` units.

        Args:
            segmentor (nn.Module): Bare segmentor (pruned in place).
            budget (int): Most units to remove.
            extra_scores (Callable, optional): ``fn(units) -> dict`` of
                per-unit vectors to put in the report (e.g. U, B, w).
            final (bool): False for a trial on a copy (the criterion's
                per-step state does not advance).
            context (ScoringContext, optional): Handed to the criterion.
            scores (list[Tensor], optional): Scores already computed for
                this structure (e.g. on the original of a trial copy).

        Returns:
            PruneResult: The record.
        """
        graph, units = self.units(segmentor, remember=final)
        if scores is None:
            scores = self.score(units, context)
        ranking = scores
        if self.flops_aware:
            ranking = cost_weighted(scores, unit_costs(segmentor, graph, units, self.cost_shape))
        chosen, shortfall = self.choose(units, ranking, budget)
        result = PruneResult(total=sum(u.num_units for u in units), shortfall=shortfall)
        zeros = [zero_scale_units(u) for u in units]
        if final and self.fold_constants:
            result.folded = fold_constant_channels(segmentor, graph, units, chosen, zeros,
                                                   self.trace_shape)
        for u, s, idxs, zero in zip(units, scores, chosen, zeros):
            entry = dict(name=u.name, kind=u.kind, units_before=u.num_units,
                         units_after=u.num_units - len(idxs), removed=list(idxs),
                         importance=[float(v) for v in s])
            if zero is not None:  # units whose every scale is exactly 0 (sparse training)
                entry.update(zero_scales=int(zero.sum()),
                             zero_scales_removed=int(zero[list(idxs)].sum()) if idxs else 0)
            if extra_scores is not None:
                entry.update({k: [float(x) for x in v] for k, v in extra_scores(u).items()})
            result.layers.append(entry)
        with PruningRecorder(segmentor) as rec:
            for u, idxs in zip(units, chosen):
                if not idxs:
                    continue
                if u.kind in ('channel', 'width'):
                    pruner = graph.get_pruner_of_module(u.root)
                    group = graph.get_pruning_group(u.root, pruner.prune_out_channels, idxs)
                    group.prune()
                else:
                    for pname, (dim, kept) in remove_heads(u.module, idxs).items():
                        rec.add(f'{u.name}.{pname}', dim, kept)
                result.removed += len(idxs)
        sync_embed_dims(segmentor)
        result.old_params, result.kept = rec.old_params, rec.kept
        if final and hasattr(self.importance, 'next_step'):
            self.importance.next_step()
        return result

    def budget_for_flops(self, segmentor, target_gflops, gflops_of, context=None):
        """The smallest budget whose pruned model has at most ``target_gflops``.

        Binary search over the budget; each trial prunes a copy of the model
        with the same ranking (the choice for budget k is a prefix of the
        choice for k + 1), so the result is within one unit's FLOPs of the
        target.

        Args:
            segmentor (nn.Module): Bare segmentor (not changed).
            target_gflops (float): Inference-path GFLOPs to reach.
            gflops_of (Callable): ``fn(model) -> float`` inference GFLOPs.
            context (ScoringContext, optional): Handed to the criterion (the
                model is scored once; every trial reuses the scores).

        Returns:
            tuple[int, float]: The budget and the GFLOPs it gives.
        """
        _, units = self.units(segmentor)
        scores = self.score(units, context)
        high = sum(u.num_units for u in units)
        cache = {}

        def gflops_at(k):
            if k not in cache:
                trial = copy.deepcopy(segmentor)
                self.step(trial, k, final=False, scores=scores)
                cache[k] = gflops_of(trial)
            return cache[k]

        if gflops_at(high) > target_gflops:
            print_log(f'[npdg] SHORTFALL: even the largest prune ({gflops_at(high):.4f} GFLOPs) '
                      f'stays above the FLOPs target {target_gflops:.4f}; pruning as far as the '
                      'per-layer minimum allows.', logger='current', level=30)
            return high, gflops_at(high)
        low = 0
        while low < high:  # smallest k with gflops_at(k) <= target
            mid = (low + high) // 2
            if gflops_at(mid) <= target_gflops:
                high = mid
            else:
                low = mid + 1
        return low, gflops_at(low)
