"""Sensitivity-reweighted L1 on unit scales (BN gammas and head gates)."""
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from npdg.analysis.inference_path import unwrap_model as _bare

from npdg.models.per_head_attention import PerHeadEfficientAttention
from npdg.pruning.model_prep import ensure_per_head_attention



def unit_scales(model):
    """Every unit scale: BN weights and per-head gates, by layer name.

    Args:
        model (nn.Module): Bare segmentor.

    Returns:
        dict: layer name -> scale parameter (gamma).
    """
    scales = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine and \
                m.weight.requires_grad:
            scales[name] = m.weight
        elif isinstance(m, PerHeadEfficientAttention) and m.num_heads > 1 and \
                m.head_gate is not None:
            scales[name] = m.head_gate
    return scales


@HOOKS.register_module()
class SensitivitySparsityHook(Hook):
    """Add ``s * sum_i omega_i * |gamma_i|`` to the training loss (as its subgradient).

    ``gamma`` is a unit's scale: the BN weight of a channel, the learnable gate
    of an attention head. ``omega`` comes from :class:`SensitivityStatisticsHook`
    (refreshed with the statistics; 1 before the first refresh or without that
    hook, i.e. plain network slimming): domain-sensitive and redundant units are
    pushed to zero harder. The term's gradient ``s * omega * sign(gamma)`` is
    added to ``gamma.grad`` by tensor hooks during backward (scaled by the AMP
    loss scale when there is one), so it reaches DDP's gradient averaging and
    any optimizer exactly like a loss term would.

    Args:
        s (float): Sparsity coefficient (1e-4 is a usual start).
        begin (int): First iteration (0-based) with the term.
        end (int, optional): Iteration at which the term stops; by default the
            last prune step of a :class:`UnitPruningHook` (fine-tuning runs
            without it), else the end of training.
        reweight (bool): Use omega from the statistics (False: uniform).
        priority (str): Hook priority.
    """

    def __init__(self, s=1e-4, begin=0, end=None, reweight=True, priority='NORMAL'):
        if not s >= 0:
            raise ValueError(f'SensitivitySparsityHook: s must be >= 0, got {s!r}.')
        self.s, self.begin, self.end = float(s), int(begin), end
        self.reweight = bool(reweight)
        self.priority = priority
        self._handles = []
        self._hooked = {}
        self._active = False
        self._coef = {}

    def before_run(self, runner):
        """Convert attention and settle the end iteration.

        Args:
            runner (Runner): The runner.
        """
        ensure_per_head_attention(runner)
        if self.end is None:
            for hook in runner.hooks:
                if type(hook).__name__ == 'UnitPruningHook' and hook.prune_iters:
                    self.end = max(hook.prune_iters)

    def _statistics_hook(self, runner):
        for hook in runner.hooks:
            if type(hook).__name__ == 'SensitivityStatisticsHook':
                return hook
        return None

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
        scales = unit_scales(_bare(runner.model))
        stats = self._statistics_hook(runner) if self.reweight else None
        omega = stats.omega if stats is not None else {}
        scale = self.loss_scale(runner)
        self._coef = {}
        for name, param in scales.items():
            w = omega.get(name)
            if w is None or w.numel() != param.numel():
                w = torch.ones(param.numel())
            self._coef[name] = (self.s * scale) * w.to(param.device, param.dtype)
        if set(self._hooked) != set(scales) or any(self._hooked[n] is not p
                                                   for n, p in scales.items()):
            self.attach(scales)

    def loss_scale(self, runner):
        """The AMP loss scale (1 without AMP).

        Args:
            runner (Runner): The runner.

        Returns:
            float: Scale applied to the loss before backward.
        """
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        return float(scaler.get_scale()) if scaler is not None else 1.0

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
            if not self._active:
                return grad
            return grad + self._coef[name] * torch.sign(param.detach())
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

    def after_train(self, runner):
        """Log how sparse the scales became.

        Args:
            runner (Runner): The runner.
        """
        scales = unit_scales(_bare(runner.model))
        if scales:
            g = torch.cat([p.detach().abs().flatten().cpu() for p in scales.values()])
            print_log(f'[npdg] BN scales and head gates after training: |gamma| < 0.1 for '
                      f'{(g < 0.1).float().mean() * 100:.1f} % of {g.numel()} scales '
                      '(one per BN channel or head gate)', logger='current')
