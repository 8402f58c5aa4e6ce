"""Sensitivity-reweighted L1 on unit scales (BN gammas and head gates)."""
import torch
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from npdg.amp import loss_scale as _loss_scale
from npdg.analysis.inference_path import unwrap_model as _bare
from npdg.engine import NpdgHook
from npdg.engine.run_state import run_state
from npdg.pruning.units import unit_scales


def _param_groups(runner):
    """``{id(param): its optimizer param group}`` of the runner's optimizer."""
    optimizer = getattr(getattr(runner, 'optim_wrapper', None), 'optimizer', None)
    return {id(p): group for group in getattr(optimizer, 'param_groups', [])
            for p in group['params']}


def _optimizer_stepped(runner):
    """Whether this iteration ended with an optimizer step (gradient accumulation)."""
    wrapper = getattr(runner, 'optim_wrapper', None)
    counts = getattr(wrapper, '_accumulative_counts', 1)
    inner = getattr(wrapper, '_inner_count', 0)
    max_counts = getattr(wrapper, '_max_counts', -1)
    return counts <= 1 or inner % counts == 0 or inner == max_counts


@HOOKS.register_module()
class SensitivitySparsityHook(NpdgHook):
    """Sparse training: ``s * sum_i omega_i * |gamma_i|`` on the unit scales.

    ``gamma`` is a unit's scale: the BN weight of a channel, the learnable gate
    of an attention head. ``omega`` comes from :class:`SensitivityStatisticsHook`
    (refreshed with the statistics; 1 before the first refresh or without that
    hook, i.e. plain network slimming): domain-sensitive and redundant units are
    pushed to zero harder.

    ``mode='proximal'`` (default) applies the term as a proximal (decoupled)
    shrink right after every optimizer step,
    ``gamma <- sign(gamma) * max(|gamma| - lr_t * s * omega, 0)`` with the
    learning rate ``lr_t`` of gamma's param group: the pull is exactly
    ``lr_t * s * omega`` per step under SGD and AdamW alike, and small scales
    reach exactly 0. ``mode='subgradient'`` adds ``s * omega * sign(gamma)``
    to ``gamma.grad`` during backward instead, the classic network-slimming
    form: an adaptive optimizer (AdamW) normalises it away, and under SGD it
    competes with weight decay.

    Mixed precision (``AmpOptimWrapper``'s ``GradScaler``): gradients are
    ``S`` times the true ones between backward and step, so the subgradient
    term is added as ``S * s * omega * sign(gamma)`` (``S`` read before the
    backward) and the update equals the unscaled one. An iteration whose
    step the scaler skipped (inf/NaN gradients) gets no proximal shrink
    either. Without a scaler (``CPUAmpOptimWrapper``, bfloat16) nothing
    changes.

    Weight decay on the scales pulls them toward 0 too (with SGD, wd 5e-4 and
    s = 1e-4 the decay is the larger pull for |gamma| > 0.2 omega), so they
    should be excluded from it (``paramwise_cfg=dict(norm_decay_mult=0.0,
    custom_keys=dict(head_gate=dict(decay_mult=0.0)))``, as npdg's configs
    do); the hook warns at the start when they are not.

    Args:
        s (float): Sparsity coefficient (1e-4 is a usual start).
        begin (int): First iteration (0-based) with the term.
        end (int, optional): Iteration at which the term stops; by default the
            last prune step of the run (``run_state(runner).prune_iters``,
            published by :class:`UnitPruningHook`; fine-tuning runs without
            it), else the end of training.
        reweight (bool): Use omega from the statistics (False: uniform, i.e.
            network slimming).
        mode (str): ``'proximal'`` or ``'subgradient'``.
        threshold (float, optional): Scale threshold whose share is logged
            (default 0.1).
        log_interval (int, optional): Log the share of scales below
            ``threshold`` every this many iterations (e.g. the statistics
            interval); None: only at the end.
        priority (str): Hook priority.
    """

    needs_per_head_attention = True

    MODES = ('proximal', 'subgradient')

    def __init__(self, s=1e-4, begin=0, end=None, reweight=True, mode='proximal',
                 threshold=None, log_interval=None, priority='NORMAL'):
        if not s >= 0:
            raise ValueError(f'SensitivitySparsityHook: s must be >= 0, got {s!r}.')
        if mode not in self.MODES:
            raise ValueError(f'SensitivitySparsityHook: mode must be one of {self.MODES}, '
                             f'got {mode!r}.')
        self.s, self.begin, self.end = float(s), int(begin), end
        self.reweight = bool(reweight)
        self.mode = mode
        self.threshold = 0.1 if threshold is None else float(threshold)
        self.log_interval = None if not log_interval else int(log_interval)
        self.priority = priority
        self._handles = []
        self._hooked = {}
        self._active = False
        self._coef = {}
        self._step_handle = None
        self._watched = None
        self._stepped = None  # under a loss scaler: whether the optimizer stepped
        self._state = None  # the run's shared state (AdaSAP's side pass, clean weights)

    def before_run(self, runner):
        """Convert attention and settle the end iteration.

        Args:
            runner (Runner): The runner.
        """
        super().before_run(runner)  # subscribes on_pruned

    def active(self, iteration):
        """Whether the term applies at ``iteration`` (0-based).

        Args:
            iteration (int): Iteration index.

        Returns:
            bool: True inside [begin, end).
        """
        return iteration >= self.begin and (self.end is None or iteration < self.end)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        """Refresh the per-unit coefficients and (re-)attach gradient hooks.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Iteration index.
            data_batch (dict, optional): Unused.
        """
        self._active = self.active(runner.iter)
        if not self._active:
            self.detach()
            return
        scales = self.scales(runner)
        scale = self.loss_scale(runner) if self.mode == 'subgradient' else 1.0
        self._coef = {name: self.s * scale * w for name, w in self.omega(runner, scales).items()}
        if self.mode == 'proximal':
            self.detach()
            self._watch_steps(runner)
            return
        self._state = run_state(runner)
        if set(self._hooked) != set(scales) or any(self._hooked[n] is not p
                                                   for n, p in scales.items()):
            self.attach(scales)

    @staticmethod
    def scales(runner):
        """The scales under the sparsity term: every unit scale the pruning hook
        may remove (the run's ``prunable_layers``; all when it names none).

        Args:
            runner (Runner): The runner.

        Returns:
            dict[str, nn.Parameter]: layer name -> scale parameter.
        """
        scales = unit_scales(_bare(runner.model))
        prunable = run_state(runner).prunable_layers
        if prunable is None:
            return scales
        return {name: p for name, p in scales.items() if name in prunable}

    def omega(self, runner, scales):
        """Per-scale weights omega (ones without statistics or with ``reweight=False``).

        Args:
            runner (Runner): The runner.
            scales (dict): name -> scale parameter.

        Returns:
            dict: name -> omega tensor (on the parameter's device).
        """
        omega = run_state(runner).omega if self.reweight else {}
        out = {}
        for name, param in scales.items():
            w = omega.get(name)
            if w is None or w.numel() != param.numel():
                w = torch.ones(param.numel())
            out[name] = w.to(param.device, param.dtype)
        return out

    def before_train(self, runner):
        """Settle the end iteration (the run's last prune step, from the shared
        state); warn when weight decay also pulls the scales, or scales start
        at exactly 0.

        Args:
            runner (Runner): The runner.
        """
        super().before_train(runner)  # checks the hook order
        self.end = self.until_last_prune(runner, self.end)
        if self.s == 0:
            return
        self._warn_zero_scales(runner)
        decayed = {}
        groups = _param_groups(runner)
        for name, param in self.scales(runner).items():
            group = groups.get(id(param))
            if group is not None and group.get('weight_decay', 0):
                decayed[name] = group['weight_decay']
        if decayed:
            print_log(
                f'[npdg] WARNING: {len(decayed)} BN-weight/head-gate tensors are under weight '
                f'decay (e.g. {next(iter(decayed))}: {next(iter(decayed.values()))}); it pulls '
                'them toward 0 besides the sparsity term, so s and omega lose their meaning. '
                'Exclude them: optim_wrapper.paramwise_cfg=dict(norm_decay_mult=0.0, '
                'custom_keys=dict(head_gate=dict(decay_mult=0.0))).', logger='current',
                level=30)

    def _warn_zero_scales(self, runner):
        """Zero-initialised scales stay at 0 under the proximal shrink: say so.

        mmseg's ResNet zero-initialises the last BN of every residual block
        (``zero_init_residual=True``). From scratch, the proximal shrink keeps
        such a gamma at exactly 0 until one step's gradient exceeds ``s * omega``,
        so those branches may stay dead through sparse training (measured on the
        CPU demo: about 85 % of them still 0 after 500 iterations). Pretrained
        backbones are not affected.

        Args:
            runner (Runner): The runner.
        """
        if self.mode != 'proximal' or runner.iter > self.begin:
            return
        scales = self.scales(runner)
        zero = sum(int((p.detach() == 0).sum()) for p in scales.values())
        total = sum(p.numel() for p in scales.values())
        if zero:
            print_log(
                f'[npdg] WARNING: {zero} of {total} unit scales are exactly 0 at the start of '
                'sparse training (zero-initialised residual BNs?). The proximal shrink keeps a '
                'scale at 0 until one step\'s gradient exceeds s * omega, so these branches may '
                'stay dead. From scratch, build the backbone with zero_init_residual=False, or '
                'start the sparsity later (SensitivitySparsityHook(begin=...)).',
                logger='current', level=30)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Proximal shrink after the optimizer step; periodic sparsity log.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Iteration index.
            data_batch (dict, optional): Unused.
            outputs (dict, optional): Unused.
        """
        if self._active and self.mode == 'proximal' and self.s > 0 and \
                _optimizer_stepped(runner) and self._stepped is not False:
            self.shrink(runner)
        if self.log_interval and (runner.iter + 1) % self.log_interval == 0:
            self.log_sparsity(runner, f'at iter {runner.iter + 1}')

    @torch.no_grad()
    def shrink(self, runner):
        """``gamma <- sign(gamma) * max(|gamma| - lr * s * omega, 0)`` for every scale.

        Args:
            runner (Runner): The runner.
        """
        groups = _param_groups(runner)
        for name, param in self.scales(runner).items():
            group = groups.get(id(param))
            lr = group['lr'] if group is not None else 0.0
            coef = self._coef.get(name)
            if coef is None or coef.numel() != param.numel():
                continue
            param.copy_(torch.sign(param) * torch.clamp(param.abs() - lr * coef, min=0))

    def log_sparsity(self, runner, when):
        """Log the share of scales below the threshold.

        Args:
            runner (Runner): The runner.
            when (str): Where in training, for the message.
        """
        scales = self.scales(runner)
        if scales:
            g = torch.cat([p.detach().abs().flatten().cpu() for p in scales.values()])
            print_log(f'[npdg] BN scales and head gates {when}: |gamma| < {self.threshold:g} '
                      f'for {(g < self.threshold).float().mean() * 100:.1f} % of {g.numel()} '
                      f'scales, exactly 0 for {(g == 0).float().mean() * 100:.1f} % '
                      '(one scale per BN channel or head gate)', logger='current')

    def loss_scale(self, runner):
        """The AMP loss scale (1 without AMP).

        Args:
            runner (Runner): The runner.

        Returns:
            float: Scale applied to the loss before backward.
        """
        return _loss_scale(runner)

    def _watch_steps(self, runner):
        """Under a loss scaler, note whether this iteration's optimizer step ran.

        ``GradScaler.step`` skips ``optimizer.step()`` when the gradients hold
        inf/NaN; a post-step hook on the optimizer tells the two apart.

        Args:
            runner (Runner): The runner.
        """
        wrapper = getattr(runner, 'optim_wrapper', None)
        optimizer = getattr(wrapper, 'optimizer', None)
        if getattr(wrapper, 'loss_scaler', None) is None or \
                not isinstance(optimizer, torch.optim.Optimizer):
            self._stepped = None
            return
        if optimizer is not self._watched:
            self._unwatch()
            self._step_handle = optimizer.register_step_post_hook(self._on_step)
            self._watched = optimizer
        self._stepped = False

    def _on_step(self, optimizer, args, kwargs):
        self._stepped = True

    def _unwatch(self):
        if self._step_handle is not None:
            self._step_handle.remove()
        self._step_handle, self._watched = None, None

    def attach(self, scales):
        """Register gradient hooks on the current scale parameters.

        Args:
            scales (dict): name -> parameter.
        """
        self.detach()
        for name, param in scales.items():
            self._handles.append(param.register_hook(self._grad_hook(name, param)))
        self._hooked = dict(scales)

    def _grad_hook(self, name, param):
        def add_subgradient(grad):
            state = self._state
            if not self._active or (state is not None and state.side_pass):
                return grad  # another hook's own gradient pass (AdaSAP at w)
            # at the clean gamma when a hook moved the weights for this step (AdaSAP)
            clean = state.clean_weights.get(id(param)) if state is not None else None
            return grad + self._coef[name] * torch.sign(param.detach() if clean is None
                                                        else clean)
        return add_subgradient

    def detach(self):
        """Remove the gradient hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles, self._hooked = [], {}

    def on_pruned(self, runner):
        """Parameters were replaced: hooks are re-attached next iteration.

        Args:
            runner (Runner): The runner.
        """
        self.detach()

    def after_run(self, runner):
        """Remove hooks at the end.

        Args:
            runner (Runner): The runner.
        """
        self.detach()
        self._unwatch()

    def after_train(self, runner):
        """Log how sparse the scales became.

        Args:
            runner (Runner): The runner.
        """
        self.log_sparsity(runner, 'after training')
