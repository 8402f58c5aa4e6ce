"""Collect NPDG's per-unit sensitivity statistics during training."""
import torch
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from npdg.amp import loss_scale, training_autocast
from npdg.analysis.inference_path import unwrap_model as _bare
from npdg.engine import NpdgHook
from npdg.engine.run_state import run_state
from npdg.perturbation import build_perturbation, denormalize, normalize
from npdg.perturbation.base import norm_args_from_preprocessor
from npdg.pruning.units import unit_layers
from npdg.statistics import SensitivityStatistics, check_lambda, subsample_head_positions, subsample_positions
from npdg.statistics.observer import ActivationObserver
from npdg.utils.batchnorm import frozen_bn_stats

STYLE_MODES = ('adversarial', 'random')



# The layers whose units the statistics observe: the one definition of unit layers.
observed_layers = unit_layers


class _Offline:
    """What :meth:`SensitivityStatisticsHook.collect` reads of a runner, outside a run."""

    def __init__(self, model):
        self.model, self.optim_wrapper = model, None


def _as_float(x):
    """Half-precision activations (autocast) as float32; others unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@HOOKS.register_module()
class SensitivityStatisticsHook(NpdgHook):
    """Per-unit domain sensitivity: unary (style variance) and binary (redundancy).

    Every ``interval`` iterations, for ``num_batches`` consecutive
    iterations, the first ``num_images`` clean images of the batch are
    rendered in ``num_styles`` styles (the run's image-level perturbation,
    ``run_state(runner).perturbation``, else ``perturbation``), run through
    the segmentor in eval mode without gradients, and every unit's response
    is accumulated: a BN channel's activation before the BN affine (input
    normalised with the running statistics), an attention head's output
    before its gate (reduced to one value per token by its L2 norm).
    ``num_positions`` positions per image are sampled (the same for all
    styles of an image). Sums are all-reduced across ranks, then turned into
    scores ``w = lam * U + (1 - lam) * B`` (each normalised to [0, 1] per
    layer) and sparsity weights ``omega = (eps + w) / mean(eps + w)``, which
    are published in ``run_state(runner)`` (``statistics``, ``omega``) for
    :class:`SensitivitySparsityHook` and the pruning criteria. Memory does not grow with the
    number of batches. Sums and scores go into checkpoints (exact resume).

    The sums are kept across refreshes (``decay=1``: a cumulative estimate
    over the whole sparse phase; ``0 < decay < 1`` down-weights older
    refreshes; ``decay=0`` starts every refresh afresh): one refresh's few
    images give a noisy ranking (``benchmarks/stats_stability.py`` measures
    the rank agreement of independent estimates against the number of
    batches). A prune resets them (the layers changed).

    ``styles='random'`` (default) draws the K styles as the perturbation's
    ``sample`` does; ``'adversarial'`` pushes them up the segmentation loss
    with the perturbation's gradient ascent (``ascent_steps`` steps, the
    segmentor in eval mode, BN statistics untouched), the paper's way of
    exposing sensitive units. Measured on the demo model
    (``benchmarks/results/stats_stability.md``), adversarial styles do not
    make w more repeatable (median rank agreement 0.87 vs 0.88 at 8
    batches, 0.93 vs 0.97 at 32), so random stays the default; they do
    decouple U from B (within-layer Spearman about 0 instead of -0.6).
    Under mixed precision the pass runs in the training step's autocast
    (float16 / bfloat16 activations, ``observed_dtypes``); each observation
    is promoted to float32 before normalising and reducing it, and the sums
    are float64.

    Args:
        interval (int): Refresh period in iterations.
        num_batches (int): Batches accumulated per refresh.
        num_images (int): Content images per batch, B.
        num_styles (int): Styles per image, K (>= 2).
        num_positions (int): Sampled positions per image.
        lam (float): Weight of the unary term, in [0, 1].
        eps (float): Offset in omega.
        omega_scope (str): ``'layer'`` (default) or ``'global'`` mean in
            omega. ``w`` is min-max normalised within each layer, so its
            values carry no meaning across layers; ``'layer'`` keeps the
            mean push of every layer at 1 and only reorders within it.
        decay (float): Weight, in [0, 1], the sums keep at each refresh
            (1: cumulative, 0: reset).
        styles (str): ``'random'`` or ``'adversarial'`` (ascent on the
            segmentation loss).
        ascent_steps (int): Ascent steps of adversarial styles.
        perturbation (dict, optional): Style renderer when no image-level
            :class:`StylePerturbationHook` is present; ``AdvStyle`` default.
        begin (int): First iteration to collect.
        end (int, optional): Stop collecting at this iteration. None
            (default): at the run's last prune iteration when it prunes
            (``run_state(runner).prune_iters``; nothing reads the statistics
            after it), else never.
        seed (int, optional): Seed of styles and positions; None (default): the
            run's seed (``randomness.seed``).
        priority (str): Must run before the perturbation hook (clean images).
    """

    needs_per_head_attention = True

    state_name = 'statistics'

    def __init__(self, interval=100, num_batches=1, num_images=2, num_styles=4,
                 num_positions=256, lam=0.4, eps=0.1, omega_scope='layer', decay=1.0,
                 styles='random', ascent_steps=1, perturbation=None, begin=0, end=None,
                 seed=None, priority='HIGH'):
        check_lambda(lam)
        if int(num_styles) < 2:
            raise ValueError(f'SensitivityStatisticsHook: num_styles must be >= 2 (variance '
                             f'across styles), got {num_styles!r}.')
        if int(interval) < 1 or not 1 <= int(num_batches) <= int(interval):
            raise ValueError(
                f'SensitivityStatisticsHook: need interval >= 1 and 1 <= num_batches <= '
                f'interval, got interval={interval!r} (setting stats_interval) and '
                f'num_batches={num_batches!r} (setting stats_batches): a refresh collects on '
                'num_batches consecutive iterations of every interval. Lower stats_batches '
                'with stats_interval, e.g. --cfg-options stats_interval=2 stats_batches=1.')
        if omega_scope not in ('global', 'layer'):
            raise ValueError(f"omega_scope must be 'global' or 'layer', got {omega_scope!r}.")
        self.interval, self.num_batches = int(interval), int(num_batches)
        self.num_images, self.num_styles = int(num_images), int(num_styles)
        self.num_positions, self.lam, self.eps = int(num_positions), float(lam), float(eps)
        self.omega_scope = omega_scope
        if not 0.0 <= float(decay) <= 1.0:
            raise ValueError(f'SensitivityStatisticsHook: decay must be in [0, 1] (1: '
                             f'cumulative sums, 0: reset at every refresh), got {decay!r}.')
        if styles not in STYLE_MODES:
            raise ValueError(f'SensitivityStatisticsHook: styles must be one of {STYLE_MODES}, '
                             f'got {styles!r}.')
        if int(ascent_steps) < 0:
            raise ValueError(f'SensitivityStatisticsHook: ascent_steps must be >= 0, '
                             f'got {ascent_steps!r}.')
        self.decay, self.styles, self.ascent_steps = float(decay), styles, int(ascent_steps)
        self._perturbation_cfg = perturbation
        self.perturbation = None
        self.begin, self.end = int(begin), end
        self._end = end  # settled in before_train (see ``end``)
        self.seed = None if seed is None else int(seed)
        self.priority = priority
        self.stats = SensitivityStatistics()
        self.scores = {}
        self.omega = {}
        self.refreshes = 0
        self._observer = None
        self._collecting = False
        self._gen = None
        self.observed_dtypes = set()  # activation dtypes seen (bfloat16/float16 under --amp)

    # ----------------------------------------------------------- set-up
    def before_run(self, runner):
        """Convert attention, pick the style renderer, attach observers.

        Args:
            runner (Runner): The runner.
        """
        if self.seed is None:
            self.seed = int(getattr(runner, 'seed', 0) or 0)
        super().before_run(runner)  # subscribes on_pruned
        self.attach(_bare(runner.model))

    def before_train(self, runner):
        """Pick the style renderer; re-attach observers (a checkpoint load may
        have rebuilt modules).

        Args:
            runner (Runner): The runner.
        """
        super().before_train(runner)  # checks the hook order
        self.perturbation = self._renderer(runner)
        self.attach(_bare(runner.model))
        self.publish(runner)
        self._end = self.until_last_prune(runner, self.end)

    def _renderer(self, runner):
        shared = run_state(runner).perturbation
        if shared is not None:
            return shared
        return build_perturbation(self._perturbation_cfg or dict(type='AdvStyle'))

    def publish(self, runner):
        """Put the current scores and omega into the run's shared state.

        Args:
            runner (Runner): The runner.
        """
        state = run_state(runner)
        state.statistics, state.omega = self.scores, self.omega

    def attach(self, model):
        """(Re-)register observers on every observed layer.

        Args:
            model (nn.Module): Bare segmentor.
        """
        self.detach()
        self._observer = ActivationObserver(observed_layers(model), self._observe_channels,
                                            self._observe_heads).attach()

    def detach(self):
        """Remove every observer."""
        if self._observer is not None:
            self._observer.detach()
        self._observer = None

    def _observe_channels(self, name, module, x, output):
        """A BN layer's input, standardised by its running statistics, into the sums."""
        if not self._collecting:
            return
        x = x.detach()
        if x.dim() != 4:
            return
        self.observed_dtypes.add(x.dtype)
        x = _as_float(x)
        mean = module.running_mean.view(1, -1, 1, 1)
        std = (module.running_var + module.eps).sqrt().view(1, -1, 1, 1)
        feats = subsample_positions((x - mean) / std, self.num_styles, self.num_positions,
                                    generator=self._gen)
        self.stats.update(name, feats)

    def _observe_heads(self, name, module, heads):
        """An attention module's per-head outputs into the sums."""
        if not self._collecting:
            return
        self.observed_dtypes.add(heads.dtype)
        feats = subsample_head_positions(_as_float(heads.detach()), self.num_styles,
                                         self.num_positions, generator=self._gen)
        self.stats.update(name, feats)

    # ----------------------------------------------------------- schedule
    def collecting_at(self, iteration):
        """Whether statistics are collected at ``iteration`` (0-based).

        Args:
            iteration (int): Iteration index.

        Returns:
            bool: True inside a collection window.
        """
        if iteration < self.begin or (self._end is not None and iteration >= self._end):
            return False
        return (iteration - self.begin) % self.interval < self.num_batches

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        """Collect on the clean batch; refresh scores at a window's end.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Iteration index.
            data_batch (dict): The (still clean) batch.
        """
        it = runner.iter
        if data_batch is None or not self.collecting_at(it):
            return
        self.collect(runner, data_batch, it)
        if (it - self.begin) % self.interval == self.num_batches - 1:
            self.refresh(runner)

    def collect(self, runner, data_batch, iteration):
        """One statistics pass: B images x K styles, eval mode, no grad.

        Args:
            runner (Runner): The runner.
            data_batch (dict): Raw batch.
            iteration (int): Iteration index (seeds styles and positions).
        """
        model = _bare(runner.model)
        n = min(self.num_images, len(data_batch['inputs']))
        pre = model.data_preprocessor
        batch = pre(dict(inputs=list(data_batch['inputs'][:n]),
                         data_samples=list(data_batch['data_samples'][:n])), True)
        norm = norm_args_from_preprocessor(pre)
        self._gen = torch.Generator().manual_seed((self.seed or 0) * 7919 + iteration)
        modes = {m: m.training for m in model.modules()}
        try:
            model.eval()
            rgb = denormalize(batch['inputs'], **norm).clamp(0, 255).detach()
            styled = self.render_styles(runner, model, rgb, batch['data_samples'], norm)
            with torch.no_grad():
                self._collecting = True
                with training_autocast(runner, model):
                    model._forward(normalize(styled, **norm))
        finally:
            self._collecting = False
            for m, mode in modes.items():
                m.training = mode

    def render_styles(self, runner, model, rgb, data_samples, norm):
        """The K renderings of every content image (image-major).

        Args:
            runner (Runner): The runner (autocast and loss scale of the step).
            model (nn.Module): Bare segmentor, in eval mode.
            rgb (Tensor): (B, 3, H, W) RGB images in [0, 255].
            data_samples (list[SegDataSample]): Their labels (adversarial styles).
            norm (dict): The preprocessor's normalisation.

        Returns:
            Tensor: (B * K, 3, H, W) renderings.
        """
        if self.styles == 'random' or self.ascent_steps == 0:
            with torch.no_grad():
                return self.perturbation.sample(rgb, num_styles=self.num_styles,
                                                generator=self._gen)
        samples = [s for s in data_samples for _ in range(self.num_styles)]
        scale = loss_scale(runner)

        def seg_loss(images):
            with training_autocast(runner, model):
                losses = model.loss(normalize(images, **norm), samples)
            return sum(v for k, v in losses.items() if 'loss' in k).float() * scale

        with frozen_bn_stats(model):
            return self.perturbation.perturb(rgb, seg_loss, steps=self.ascent_steps,
                                             num_styles=self.num_styles, generator=self._gen)

    def score_batches(self, model, batches, runner=None):
        """Scores of a model on given batches, outside a training run.

        The same pass as training's refresh (observers, styles, positions),
        for analyses (``benchmarks/unit_shift.py``, ``stats_stability.py``).

        Args:
            model (nn.Module): Bare segmentor.
            batches (Iterable[dict]): Raw batches (``inputs``, ``data_samples``).
            runner (object, optional): Supplies ``optim_wrapper`` (autocast);
                None: plain precision.

        Returns:
            dict: Layer name -> ``{'unary', 'binary', 'unary_norm', 'binary_norm', 'w'}``.
        """
        runner = runner if runner is not None else _Offline(model)
        if self.perturbation is None:
            self.perturbation = build_perturbation(self._perturbation_cfg or
                                                   dict(type='AdvStyle'))
        self.stats = SensitivityStatistics()
        self.attach(model)
        try:
            for i, batch in enumerate(batches):
                self.collect(runner, batch, i)
        finally:
            self.detach()
        return self.stats.scores(self.lam)

    def refresh(self, runner):
        """All-reduce the sums, compute scores and omega, reset the sums.

        Args:
            runner (Runner): The runner.
        """
        self.stats.all_reduce_()
        self.scores = {k: {n: v.detach().cpu() for n, v in d.items()}
                       for k, d in self.stats.scores(self.lam).items()}
        self.omega = {k: v.detach().cpu() for k, v in self.stats.sparsity_weights(
            self.lam, self.eps, self.omega_scope).items()}
        self.stats.decay_(self.decay)
        self.refreshes += 1
        self.publish(runner)
        if self.scores:
            w = torch.cat([s['w'] for s in self.scores.values()])
            print_log(f'[npdg] sensitivity statistics refreshed at iter {runner.iter + 1}: '
                      f'{w.numel()} BN channels and attention heads observed in '
                      f'{len(self.scores)} layers (each BN layer counted on its own; pruning '
                      f'counts coupled channels once), w mean {w.mean():.3f}{self._precision()}',
                      logger='current')

    def _precision(self):
        """', from bfloat16 activations into float64 sums' when autocast was on, else ''."""
        half = sorted(str(d).replace('torch.', '') for d in self.observed_dtypes
                      if d in (torch.float16, torch.bfloat16))
        if not half or not len(self.stats):
            return ''
        sums = {str(acc.sums()['sum'].dtype).replace('torch.', '')
                for acc in (self.stats[n] for n in self.stats)}
        return f', from {"/".join(half)} activations into {"/".join(sorted(sums))} sums'

    def on_pruned(self, runner):
        """Forget sizes that changed: sums, scores and omega start afresh.

        Args:
            runner (Runner): The runner (after a structural prune).
        """
        self.stats = SensitivityStatistics()
        self.scores, self.omega = {}, {}
        self.attach(_bare(runner.model))
        self.publish(runner)

    # ----------------------------------------------------------- checkpoints
    def before_save_checkpoint(self, runner, checkpoint):
        """Store sums, scores and omega (tensors and plain containers only).

        Args:
            runner (Runner): The runner.
            checkpoint (dict): Checkpoint being saved.
        """
        self.save_state(checkpoint, dict(stats=self.stats.state_dict(), scores=self.scores,
                                         omega=self.omega, refreshes=self.refreshes))

    def after_load_checkpoint(self, runner, checkpoint):
        """Restore them when resuming.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): Loaded checkpoint.
        """
        state = self.resumed_state(runner, checkpoint)
        if state is None:
            return
        self.stats = SensitivityStatistics()
        self.stats.load_state_dict(state['stats'])
        self.scores, self.omega = state['scores'], state['omega']
        self.refreshes = state.get('refreshes', 0)
        self.publish(runner)
