"""AdaSAP: sharpness-aware training with a radius per unit, smaller for important units."""
import contextlib
import time

import torch
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict
from mmseg.registry import HOOKS

from npdg.amp import loss_scale, training_autocast
from npdg.analysis.inference_path import unwrap_model as _bare
from npdg.engine import NpdgHook
from npdg.engine.run_state import run_state
from npdg.importance.passes import seg_loss
from npdg.pruning.pruner import UnitPruner
from npdg.pruning.units import check_unit_types
from npdg.sharpness import UnitIndex, adaptive_perturbation, unit_radii
from npdg.utils.batchnorm import frozen_bn_stats

from .scoring import check_scoring, runner_scoring_context

NORMALIZATIONS = ('unit', 'global')


@HOOKS.register_module()
class AdaSAPHook(NpdgHook):
    """Adaptive sharpness-aware training for pruning (Bair et al., ICLR 2024).

    Every iteration is a two-pass sharpness-aware step:

    1. ``before_train_iter``: the loss of the iteration's batch (after the
       style perturbation re-styled it) and its gradient ``g`` at the weights
       ``w`` (``torch.autograd.grad``: ``.grad`` and gradient accumulation are
       untouched; BN running statistics update as in any training forward);
    2. every weight moves to ``w + eps`` (:func:`npdg.sharpness.adaptive_perturbation`:
       unit ``i`` by ``rho_i * T_i^2 g_i / ||T g||``, ``T = |w| + eta``, the norm
       over all weights as in ASAM, or per unit with ``normalization='unit'``);
    3. mmengine's training step computes the loss and gradient at
       ``w + eps`` with the BN running statistics frozen;
    4. the weights are put back to ``w`` (bit-exact copies) just before the
       optimizer step (an optimizer step pre-hook), or after the iteration
       when no step ran (gradient accumulation, an AMP step skipped), and
       the optimizer steps ``w`` with the gradient taken at ``w + eps``.

    Phases: (1) before the first prune step, adaptive radii
    ``rho_i = rho_max - (rho_max - rho_min) * s_hat_i`` from the unit
    importance ``importance`` (any registered criterion; ``s_hat`` min-max
    normalised per layer), re-scored every ``score_interval`` iterations and
    after every prune; (2) while the pruning hook prunes (any criterion, any
    schedule), the same; (3) after the last prune step (``uniform_after``,
    default the run's last prune iteration from the shared run state) one
    uniform radius ``rho``. Entries no unit owns (classifier, ...) always use
    ``free_radius``. Without a pruning hook the radii stay adaptive unless
    ``uniform_after`` is set.

    Cost: one extra forward and backward per iteration (mmengine logs the
    iteration time; ``benchmarks/adasap_cost.py`` measures the ratio). Under
    AMP the extra pass runs in the training step's precision with its loss
    scale (the step direction is scale-free); a non-finite gradient skips
    the perturbation for that iteration. In DDP each rank perturbs with its
    own batch's gradient (no extra all-reduce, as in common SAM
    implementations); the update is all-reduced as usual.

    Args:
        importance (dict): Criterion of the radii, e.g.
            ``dict(type='L1Importance', normalizer='mean')``.
        rho_min (float): Radius of each layer's most important unit.
        rho_max (float): Radius of its least important unit.
        rho (float): Uniform radius of phase 3.
        free_radius (float, optional): Radius of entries no unit owns;
            default ``rho``.
        eta (float): ASAM's ``T = |w| + eta``.
        normalization (str): ``'global'`` (default: ASAM's one norm of ``T g`` over
            all weights, each entry scaled by its unit's radius) or ``'unit'``
            (each unit normalised by its own ``||T_i g_i||``: every unit moves by
            ``rho_i`` of its own weights; with the paper's radii up to 2 this
            collapsed training on the CPU benchmark, see docs/results.md "AdaSAP").
        score_interval (int): Iterations between re-scorings of the radii.
        uniform_after (int, optional): Iteration count from which the radius
            is uniform; default the last prune iteration of the run.
        begin (int): First iteration (0-based) with the sharpness-aware step.
        unit_types (Sequence[str]): Units with adaptive radii (``'channel'``,
            ``'head'``, ``'width'``), as in :class:`UnitPruningHook`.
        trace_shape (tuple): (C, H, W) input used to trace the units.
        scoring (dict, optional): Data for data-driven criteria, as in
            :class:`UnitPruningHook`.
        priority (int | str): 45, between ``ABOVE_NORMAL`` (the style
            perturbation, which must run first) and ``NORMAL`` (EMA,
            sparsity), so that they see the restored weights.
    """

    needs_per_head_attention = True

    state_name = 'adasap'

    def __init__(self, importance=dict(type='L1Importance', normalizer='mean'), rho_min=0.01,
                 rho_max=2.0, rho=1.0, free_radius=None, eta=0.01, normalization='global',
                 score_interval=10, uniform_after=None, begin=0, unit_types=('channel', 'head'),
                 trace_shape=(3, 64, 64), scoring=None, priority=45):
        if not 0 <= rho_min <= rho_max:
            raise ValueError(f'AdaSAPHook: need 0 <= rho_min <= rho_max, got rho_min={rho_min!r}, '
                             f'rho_max={rho_max!r}.')
        if rho < 0 or (free_radius is not None and free_radius < 0):
            raise ValueError('AdaSAPHook: rho and free_radius must be >= 0.')
        if normalization not in NORMALIZATIONS:
            raise ValueError(f'AdaSAPHook: normalization must be one of {NORMALIZATIONS}, got '
                             f'{normalization!r}.')
        if int(score_interval) < 1:
            raise ValueError(f'AdaSAPHook: score_interval must be >= 1, got {score_interval!r}.')
        unit_types = check_unit_types(unit_types, 'AdaSAPHook')
        self.pruner = UnitPruner(importance, None, channels='channel' in unit_types,
                                 heads='head' in unit_types, trace_shape=trace_shape,
                                 widths='width' in unit_types)
        self.rho_min, self.rho_max, self.rho = float(rho_min), float(rho_max), float(rho)
        self.free_radius = self.rho if free_radius is None else float(free_radius)
        self.eta = float(eta)
        self.normalization = normalization
        self.score_interval = int(score_interval)
        self.uniform_after = None if uniform_after is None else int(uniform_after)
        self.begin = int(begin)
        self.scoring = check_scoring(scoring, 'AdaSAPHook')
        self.priority = priority
        self.radii = None          # per layer, the adaptive radii in force
        self.scored_iter = None    # iteration the radii were scored at
        self._index = None         # (units, their entry -> unit table)
        self._saved = {}           # name -> clean weights while perturbed
        self._params = {}          # name -> the parameters perturbed this iteration
        self._bn = None            # exit stack of the frozen BN statistics
        self._handle = None        # optimizer step pre-hook
        self.extra_seconds = 0.0   # time spent in the extra pass and the perturbation
        self.steps = 0             # iterations with a sharpness-aware step
        self.skipped = 0           # iterations skipped (non-finite gradient)

    # ---------------------------------------------------------------- set-up
    def before_run(self, runner):
        """Per-head attention (as the pruning hook has it) and the prune subscription.

        Args:
            runner (Runner): The runner.
        """
        super().before_run(runner)  # subscribes on_pruned

    def before_train(self, runner):
        """Phase 3 starts after the run's last prune step unless set.

        Args:
            runner (Runner): The runner.
        """
        if isinstance(getattr(runner, 'optim_wrapper', None), OptimWrapperDict):
            raise TypeError('AdaSAPHook: one optimizer wrapper is supported (got an '
                            'OptimWrapperDict); use a single optim_wrapper.')
        super().before_train(runner)  # checks the hook order
        self.uniform_after = self.until_last_prune(runner, self.uniform_after)
        print_log(f'[npdg] AdaSAP: adaptive radii [{self.rho_min}, {self.rho_max}] by '
                  f'{type(self.pruner.importance).__name__} until iteration '
                  f'{self.uniform_after if self.uniform_after is not None else "the end"}, then '
                  f'uniform {self.rho}; {self.normalization} normalisation', logger='current')

    def on_pruned(self, runner):
        self.radii = None  # re-scored on the pruned structure (the index follows the units)

    def phase(self, iteration):
        """``'off'``, ``'adaptive'`` or ``'uniform'`` at iteration ``iteration`` (0-based).

        Args:
            iteration (int): Iteration index.

        Returns:
            str: The phase.
        """
        if iteration < self.begin:
            return 'off'
        if self.uniform_after is not None and iteration >= self.uniform_after:
            return 'uniform'
        return 'adaptive'

    # ---------------------------------------------------------------- radii
    def score(self, runner, model):
        """Re-score the units and set the adaptive radii.

        Args:
            runner (Runner): The runner.
            model (nn.Module): Bare segmentor.
        """
        _, units = self.pruner.units(model)
        context = runner_scoring_context(runner, model, runner.iter, **self.scoring)
        self.radii = unit_radii(self.pruner.score(units, context), self.rho_min, self.rho_max)
        self.scored_iter = runner.iter

    def current_radii(self, runner, model):
        """The radii in force now (re-scored when due)."""
        if self.phase(runner.iter) == 'uniform':
            return self.rho
        if self.radii is None or runner.iter - self.scored_iter >= self.score_interval:
            self.score(runner, model)
        return self.radii

    def index(self, model):
        """The entry -> unit table of the current structure (built once per structure)."""
        _, units = self.pruner.units(model)  # traced once per structure
        if self._index is None or self._index[0] is not units:
            self._index = (units, UnitIndex(model, units))
        return self._index[1]

    # ---------------------------------------------------------------- the step
    def first_pass(self, runner, model, data_batch, params):
        """The loss at ``w`` on the iteration's batch and its gradient (``.grad`` untouched).

        Returns:
            dict[str, Tensor] | None: Gradients by name, None if non-finite.
        """
        batch = model.data_preprocessor(data_batch, True)
        with training_autocast(runner, model):
            loss = seg_loss(model, batch['inputs'], batch['data_samples'])
        state = run_state(runner)
        state.side_pass = True  # gradient hooks of the training step stay out of this pass
        try:
            grads = torch.autograd.grad(loss.float() * loss_scale(runner),
                                        list(params.values()), allow_unused=True)
        finally:
            state.side_pass = False
        if not all(g is None or torch.isfinite(g).all() for g in grads):
            return None
        return {n: g for n, g in zip(params, grads)}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        """Move the weights to ``w + eps`` and freeze BN statistics for the step.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Iteration index.
            data_batch (dict): The (re-styled) raw batch.
        """
        if data_batch is None or self.phase(runner.iter) == 'off':
            return
        started = time.perf_counter()
        model = _bare(runner.model)
        radii = self.current_radii(runner, model)
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        grads = self.first_pass(runner, model, data_batch, params)
        if grads is None:
            self.skipped += 1
            print_log(f'[npdg] AdaSAP: non-finite gradient at iteration {runner.iter}; plain '
                      'step this iteration', logger='current', level=30)
            return
        eps = adaptive_perturbation(params, grads, self.index(model), radii, self.free_radius,
                                    self.eta, self.normalization)
        with torch.no_grad():
            for name, e in eps.items():
                self._saved[name] = params[name].detach().clone()
                params[name].add_(e)
        self._params = params
        self._state = run_state(runner)
        self._state.clean_weights = {id(params[n]): v for n, v in self._saved.items()}
        self._bn = contextlib.ExitStack()
        self._bn.enter_context(frozen_bn_stats(model))
        optimizer = runner.optim_wrapper.optimizer
        self._handle = optimizer.register_step_pre_hook(lambda *args: self.restore())
        self.steps += 1
        self.extra_seconds += time.perf_counter() - started

    @torch.no_grad()
    def restore(self):
        """Put the clean weights back and unfreeze BN statistics (idempotent)."""
        for name, value in self._saved.items():
            self._params[name].copy_(value)
        self._saved = {}
        if getattr(self, '_state', None) is not None:
            self._state.clean_weights = {}
        if self._bn is not None:
            self._bn.close()
            self._bn = None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Restore when no optimizer step did; drop the step pre-hook.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Iteration index.
            data_batch (dict, optional): Unused.
            outputs (dict, optional): Unused.
        """
        self.restore()
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def after_train(self, runner):
        """Log what the extra pass cost.

        Args:
            runner (Runner): The runner.
        """
        if self.steps:
            print_log(f'[npdg] AdaSAP: {self.steps} sharpness-aware steps ({self.skipped} '
                      f'skipped), extra pass {1000 * self.extra_seconds / self.steps:.1f} '
                      'ms/iteration on average', logger='current')

    # ---------------------------------------------------------------- resume
    def before_save_checkpoint(self, runner, checkpoint):
        """Keep the radii in force, so a resumed run steps exactly as the original.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): Checkpoint being saved.
        """
        self.save_state(checkpoint, dict(
            radii=None if self.radii is None else [r.tolist() for r in self.radii],
            scored_iter=self.scored_iter))

    def after_load_checkpoint(self, runner, checkpoint):
        """Restore the radii when resuming.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): Loaded checkpoint.
        """
        state = self.resumed_state(runner, checkpoint)
        if state is None:
            return
        radii = state.get('radii')
        self.radii = None if radii is None else [torch.tensor(r, dtype=torch.float64)
                                                 for r in radii]
        self.scored_iter = state.get('scored_iter')
