"""Physically prune channels and attention heads during training."""
import hashlib
import json
import os.path as osp
import time

from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from npdg.analysis.complexity import segmentor_complexity
from npdg.analysis.inference_path import unwrap_model as _bare
from npdg.engine import NpdgHook
from npdg.engine.rebuild import rebuild_after_prune
from npdg.engine.run_state import run_state
from npdg.importance import build_importance
from npdg.pruning import report
from npdg.pruning.pruner import UnitPruner
from npdg.pruning.selection import SCHEDULES, cumulative_fraction, step_budget
from npdg.pruning.units import check_unit_types
from npdg.utils.settings import config_settings

from .scoring import check_scoring, runner_scoring_context


def prunable_layers(units):
    """Names of the unit layers (BNs, attention modules) the given units cover."""
    names = set()
    for u in units:
        if u.kind == 'head':
            names.add(u.name)
        else:
            names.update(entry[0] for entry in u.bns)
    return names



@HOOKS.register_module()
class UnitPruningHook(NpdgHook):
    """Rank units globally and remove them at the configured iterations.

    After iteration ``i`` in ``prune_iters`` (1-based: "after 2000 iterations")
    the units (coupled channel groups, attention heads) are scored by
    ``importance`` (|gamma| for NPDG), units below ``threshold`` are
    candidates, and the least important go until the step's share of the
    ratio budget is used (cumulative target after step k of n:
    ``ratio * units * k / n``), keeping ``min_keep``/``min_keep_ratio`` per
    layer. They are removed physically; then the optimizer is synced (its
    parameters swapped by name and its state **sliced** consistently; the
    param schedulers keep running), EMA models are rebuilt and the DDP wrapper
    is re-made on every rank, and training continues. FLOPs/params before and
    after are logged; a JSON report and a PNG figure go to
    ``<work_dir>/pruning/``.

    The budget is either a unit ``ratio`` or a FLOPs target
    (``target_flops_ratio``: prune, by the same ranking, until the
    inference-path FLOPs at ``flops_shape`` are at most that fraction of the
    FLOPs before the first prune step; step k of n aims at
    ``1 - (1 - target) * k / n``, or ``target ** (k / n)`` with
    ``schedule='geometric'``). Units of the auxiliary head alone are not
    units (no inference FLOPs to save).

    The criterion gets a :class:`npdg.importance.ScoringContext` at every
    step: ``scoring['num_batches']`` batches of ``scoring['batch_size']``
    training images (default: the train loader's batch size) drawn with
    the run's seed and the iteration (the training loader is not touched),
    the run's style perturbation and NPDG's statistics (from the run's
    shared state), and, for oracle options only, unlabelled target images
    (``scoring['target_dataset']``, a dataset config).

    Args:
        prune_iters (Sequence[int]): Iteration counts after which to prune.
        ratio (float, optional): Fraction of all units removed by the last
            step, in [0, 1). None when ``target_flops_ratio`` is given.
        threshold (float, optional): Score threshold (|gamma| < t), used when
            the criterion is a scale. None: ratio only.
        target_flops_ratio (float, optional): FLOPs budget instead of a unit
            ratio, in (0, 1].
        shortfall (str): When the threshold leaves fewer candidates than the
            budget: ``'ratio'`` (log a SHORTFALL warning, record it in the
            report, fill the budget by rank) or ``'error'`` (stop).
        importance (dict): Criterion, e.g. ``dict(type='BNScaleImportance')``,
            ``dict(type='L1Importance')``.
        min_keep (int): Minimum units per layer.
        min_keep_ratio (float): Minimum fraction kept per layer.
        round_to (int, optional): Keep channel counts multiples of this.
        unit_types (Sequence[str]): What to prune: ``'width'`` (coupled
            channel groups without BN: Mix-FFN hidden channels, embedding
            widths; grouped global pruning, weight/gradient criteria only),
            ``'channel'`` (BN-scaled
            conv channel groups) and/or ``'head'`` (attention heads of
            multi-head modules).
        trace_shape (tuple): (C, H, W) input used to trace the graph.
        flops_shape (tuple): (C, H, W) at which FLOPs are reported.
        reset_optimizer_state (bool): Drop, instead of slice, the optimizer
            state of pruned parameters.
        flops_aware (bool): Rank by score per FLOPs a unit's removal saves
            (relative to the mean unit, counted at ``flops_shape``;
            :class:`npdg.pruning.UnitPruner`).
        scope (str): ``'global'`` ranking over all layers or ``'layer'``
            (the same share of every layer, ranked within it).
        schedule (str): Over several prune steps: ``'linear'`` (equal
            shares of the original) or ``'geometric'`` (equal shares of what
            remains; DSS).
        scoring (dict, optional): ``num_batches`` (4), ``batch_size``
            (None: the train loader's) and ``target_dataset`` (None).
        ignored_units (Sequence[str]): Regular expressions naming units
            (their root layer) that are never scored nor removed, e.g. a
            MobileNet's residual streams and stem
            (:class:`npdg.pruning.UnitPruner`). The BN layers of the units
            left are published as the run's ``prunable_layers``, so sparse
            training shrinks only what can be pruned.
        priority (str): Hook priority.
    """

    needs_per_head_attention = True

    state_name = 'pruning'

    def __init__(self, prune_iters, ratio=0.3, threshold=0.1,
                 importance=dict(type='BNScaleImportance'), min_keep=1, min_keep_ratio=0.1,
                 round_to=None, unit_types=('channel', 'head'),
                 trace_shape=(3, 64, 64), flops_shape=(3, 512, 1024),
                 reset_optimizer_state=False, target_flops_ratio=None, shortfall='ratio',
                 scope='global', schedule='linear', scoring=None, flops_aware=False,
                 ignored_units=(), priority='LOW'):
        if target_flops_ratio is not None:
            if ratio is not None:
                raise ValueError('UnitPruningHook: give either ratio or target_flops_ratio, '
                                 'not both (set ratio=None for a FLOPs budget).')
            if not isinstance(target_flops_ratio, (int, float)) or \
                    not 0 < target_flops_ratio <= 1:
                raise ValueError('UnitPruningHook: target_flops_ratio must be in (0, 1], got '
                                 f'{target_flops_ratio!r}.')
        elif not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
            raise ValueError(f'UnitPruningHook: ratio must be in [0, 1), got {ratio!r}.')
        iters = sorted({int(i) for i in (prune_iters if isinstance(prune_iters, (list, tuple))
                                         else [prune_iters])})
        if not iters or iters[0] < 1:
            raise ValueError(f'UnitPruningHook: prune_iters must be positive iteration '
                             f'counts, got {prune_iters!r}.')
        if threshold is not None and threshold < 0:
            raise ValueError(f'UnitPruningHook: threshold must be >= 0 or None, got {threshold!r}.')
        unit_types = check_unit_types(unit_types, 'UnitPruningHook')
        build_importance(importance)  # unknown criteria fail at build time
        if schedule not in SCHEDULES:
            raise ValueError(f'UnitPruningHook: schedule must be one of {SCHEDULES}, '
                             f'got {schedule!r}.')
        self.scoring = check_scoring(scoring, 'UnitPruningHook')
        self.schedule = schedule
        self.prune_iters = iters
        self.ratio = None if ratio is None else float(ratio)
        self.target_flops_ratio = None if target_flops_ratio is None else \
            float(target_flops_ratio)
        # What this hook runs with, as given (after the config's settings were resolved).
        self.settings = dict(prune_iters=iters, ratio=self.ratio,
                             target_flops_ratio=self.target_flops_ratio, shortfall=shortfall,
                             threshold=threshold,
                             importance=dict(importance), min_keep=min_keep,
                             min_keep_ratio=min_keep_ratio, round_to=round_to,
                             unit_types=unit_types, scope=scope, schedule=schedule,
                             flops_aware=bool(flops_aware),
                             ignored_units=list(ignored_units or ()),
                             scoring={k: v for k, v in self.scoring.items()
                                      if k != 'target_dataset'},
                             reset_optimizer_state=bool(reset_optimizer_state))
        self.pruner = UnitPruner(importance, threshold, min_keep, min_keep_ratio, round_to,
                                 'channel' in unit_types, 'head' in unit_types, trace_shape,
                                 shortfall, scope, widths='width' in unit_types,
                                 flops_aware=flops_aware, cost_shape=flops_shape,
                                 ignored_units=ignored_units)
        self.flops_shape = tuple(flops_shape)
        self.reset_optimizer_state = bool(reset_optimizer_state)
        self.priority = priority
        self.total_units = None
        self.start_gflops = None
        self.removed = 0
        self.steps_done = 0
        self.history = []

    def before_run(self, runner):
        """Validate against the run: iterations and prunable units.

        Args:
            runner (Runner): The runner.
        """
        super().before_run(runner)
        run_state(runner).prune_iters = list(self.prune_iters)
        loop = getattr(runner, '_train_loop', None)
        max_iters = getattr(loop, 'max_iters', None) if not isinstance(loop, dict) else \
            loop.get('max_iters')
        if max_iters is not None and self.prune_iters[-1] > max_iters:
            raise ValueError(f'UnitPruningHook: prune iteration {self.prune_iters[-1]} is beyond '
                             f'train_cfg.max_iters={max_iters}.')
        if loop is None:
            return  # test/val only
        _, units = self.pruner.units(_bare(runner.model))
        if not units:
            raise ValueError(
                'UnitPruningHook: the model has nothing prunable (no BN channel groups '
                'and no multi-head attention). NPDG prunes BN-scaled conv channels and '
                'attention heads of mmseg models.')
        if self.total_units is None:
            self.total_units = sum(u.num_units for u in units)
        if self.pruner.ignored_units:
            run_state(runner).prunable_layers = prunable_layers(units)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Prune when the iteration count reaches a prune iteration.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Iteration index.
            data_batch (dict, optional): Unused.
            outputs (dict, optional): Unused.
        """
        done = runner.iter + 1
        if done not in self.prune_iters or done in [h['iter'] for h in self.history]:
            return
        self.prune(runner, done)

    def scoring_context(self, runner, model, done):
        """The step's scoring context (data drawn lazily, only if a criterion asks).

        Args:
            runner (Runner): The runner.
            model (nn.Module): Bare segmentor.
            done (int): Iterations completed (seeds the draw).

        Returns:
            ScoringContext: The context.
        """
        return runner_scoring_context(runner, model, done, **self.scoring)

    def _extra_scores(self, runner):
        scores = run_state(runner).statistics
        if not scores:
            return None

        def per_unit(units):
            out = {}
            for key in ('unary_norm', 'binary_norm', 'w'):
                if units.kind == 'head':
                    vec = scores.get(units.name, {}).get(key)
                    if vec is not None and vec.numel() == units.num_units:
                        out[key.replace('_norm', '')] = vec.tolist()
                else:
                    def value(name, bn, key=key):
                        vec = scores.get(name, {}).get(key)
                        return vec if vec is not None and vec.numel() == bn.num_features \
                            else None
                    out[key.replace('_norm', '')] = units.gather(value).tolist()
            return out
        return per_unit

    @staticmethod
    def check_same_selection(layers):
        """Verify every rank chose the same units (digest of the removed indices).

        Args:
            layers (list[dict]): The step's per-layer records.

        Returns:
            str: The selection digest.

        Raises:
            RuntimeError: If ranks disagree (they would build different models).
        """
        plan = json.dumps([(entry['name'], entry['removed']) for entry in layers])
        digest = hashlib.md5(plan.encode()).hexdigest()[:12]
        if get_world_size() > 1:
            digests = all_gather_object(digest)
            if len(set(digests)) != 1:
                raise RuntimeError(f'UnitPruningHook: ranks chose different units to prune '
                                   f'({digests}); statistics or scales diverged across ranks.')
        return digest

    def prune(self, runner, done):
        """One prune step, then rebuild the optimisation state.

        Args:
            runner (Runner): The runner.
            done (int): Iterations completed.
        """
        started = time.perf_counter()
        model = _bare(runner.model)
        step = self.prune_iters.index(done) + 1
        before = segmentor_complexity(model, self.flops_shape)
        if self.start_gflops is None:
            self.start_gflops = before['gflops']
        target_gflops = None
        context = self.scoring_context(runner, model, done)
        steps = len(self.prune_iters)
        if self.target_flops_ratio is None:
            budget = step_budget(self.total_units, self.ratio, step, steps, self.removed,
                                 self.schedule)
        else:
            target_gflops = self.start_gflops * (1 - cumulative_fraction(
                1 - self.target_flops_ratio, step, steps, self.schedule))
            budget, _ = self.pruner.budget_for_flops(
                model, target_gflops,
                lambda m: segmentor_complexity(m, self.flops_shape)['gflops'], context)
        result = self.pruner.step(model, budget, self._extra_scores(runner), context=context)
        digest = self.check_same_selection(result.layers)
        rebuild_after_prune(runner, result.old_params, result.kept,
                            reset_state=self.reset_optimizer_state)
        run_state(runner).notify_pruned(runner)
        self.removed += result.removed
        self.steps_done = step
        after = segmentor_complexity(_bare(runner.model), self.flops_shape)
        shape = 'x'.join(map(str, self.flops_shape))
        print_log(
            f'[npdg] prune step {step}/{len(self.prune_iters)} after iter {done}: removed '
            f'{result.removed} of {result.total} units (a unit is one coupled channel group or '
            f'one attention head), {result.total - result.removed} remain (budget {budget}'
            + (f' for the FLOPs target {target_gflops:.4f}' if target_gflops else '')
            + '); GFLOPs '
            f'{before["gflops"]:.3f} -> {after["gflops"]:.3f}, params '
            f'{before["params"] / 1e6:.3f} M -> {after["params"] / 1e6:.3f} M '
            f'(input {shape}); selection {digest} identical on {get_world_size()} rank(s)',
            logger='current')
        zero = sum(entry.get('zero_scales', 0) for entry in result.layers)
        if zero:
            print_log(f'[npdg] {zero} units had every scale at exactly 0 before this step '
                      f'({sum(e.get("zero_scales_removed", 0) for e in result.layers)} of them '
                      f'removed; per layer: zero_scales / zero_scales_removed in '
                      'pruning/pruning_report.json); constant channels folded into their '
                      f'consumers: {result.folded.get("folded", 0)} (not constant or nowhere '
                      f'to fold: {result.folded.get("skipped", 0)})', logger='current')
        entry = dict(iter=done, step=step, removed=result.removed, total=result.total,
                     budget=budget, gflops_before=before['gflops'], gflops_after=after['gflops'],
                     params_before=before['params'], params_after=after['params'],
                     flops_input=shape, target_gflops=target_gflops,
                     shortfall=result.shortfall, folded=result.folded,
                     seconds=round(time.perf_counter() - started, 3), layers=result.layers)
        self.history.append(entry)
        if get_rank() == 0:
            out_dir = osp.join(runner.work_dir, 'pruning')
            report.write_json(osp.join(out_dir, 'pruning_report.json'), self.history,
                              settings=self.settings,
                              config_settings=config_settings(runner.cfg))
            report.write_figure(osp.join(out_dir, f'pruning_iter_{done}.png'), entry)

    def before_save_checkpoint(self, runner, checkpoint):
        """Keep the pruning progress in the checkpoint.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): Checkpoint being saved.
        """
        self.save_state(checkpoint, dict(
            total_units=self.total_units, removed=self.removed, steps_done=self.steps_done,
            start_gflops=self.start_gflops,
            done_iters=[h['iter'] for h in self.history]))

    def after_load_checkpoint(self, runner, checkpoint):
        """Restore the progress when resuming.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): Loaded checkpoint.
        """
        state = self.resumed_state(runner, checkpoint)
        if state is None:
            return
        self.total_units = state['total_units']
        self.removed = state['removed']
        self.start_gflops = state.get('start_gflops')
        self.steps_done = state['steps_done']
        self.history = [dict(iter=i) for i in state['done_iters']]
