"""Distil a frozen, unpruned teacher into the pruned model while it fine-tunes."""
import os.path as osp
import weakref

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS, MODELS

from npdg.amp import loss_scale
from npdg.analysis.inference_path import unwrap_model as _bare
from npdg.engine import NpdgHook
from npdg.engine.run_state import run_state
from npdg.pruning.distill import pixel_kd_grad


def _runs_before_iter(hook):
    """Whether ``hook`` does anything in ``before_train_iter``."""
    cls = type(hook)
    return (cls.before_train_iter is not Hook.before_train_iter
            or cls._before_iter is not Hook._before_iter)


class _Tap:
    """A forward hook that calls back into its owner through weak references.

    Copying the model (``copy.deepcopy`` in a FLOPs search, an EMA model) then
    copies neither the owner (nor its teacher and runner), and the copy's taps
    do nothing: they fire only for the module they were attached to.
    """

    def __init__(self, owner, module, method):
        self.owner, self.module, self.method = weakref.ref(owner), weakref.ref(module), method

    def __call__(self, module, *args):
        owner = self.owner()
        if owner is None or module is not self.module():
            return None
        return getattr(owner, self.method)(module, *args)


@HOOKS.register_module()
class DistillationHook(NpdgHook):
    """Pixel-wise knowledge distillation from a frozen teacher (the fine-tune's recovery term).

    From iteration ``begin`` on, every training step's loss gains
    ``weight * T^2 * mean_pixels KL(softmax(t / T) || softmax(s / T))``
    (:mod:`npdg.pruning.distill`): ``s`` are the decode head's logits of the
    model being trained, ``t`` the teacher's logits on the same (possibly
    re-styled) normalised batch. The teacher is the config's ``model`` with
    the weights of ``teacher_checkpoint`` (a pruned checkpoint's structure is
    applied first), in eval mode and without gradients; it is built from the
    file in ``before_train``, so a resumed run distils from the same teacher.

    How: a forward pre-hook on the backbone keeps the step's input, and a
    forward hook on the decode head's classifier (``conv_seg``) runs the teacher on it and adds the
    closed-form gradient of the loss (times the AMP loss scale) to the
    gradient that reaches the logits in mmengine's own backward. The loss is
    logged as ``loss_kd`` (the logged ``loss`` does not include it).

    Only the training step's forward is distilled: the hook arms itself in
    ``before_train_iter`` as the *last* hook to run there (after the style
    perturbation's ascent, the statistics and AdaSAP's first pass) and
    disarms after the first forward that builds a graph; ``before_train``
    raises if a hook that acts in ``before_train_iter`` runs after it.

    Args:
        teacher_checkpoint (str): Checkpoint of the teacher (e.g. the warm
            start the run loads: ``'${warm_start}'``).
        weight (float): Factor of the distillation loss; 0 turns the hook off
            (no teacher is built). Defaults to 1.0.
        temperature (float): Softmax temperature ``T``. Defaults to 1.0.
        begin (int | str): First iteration (0-based) distilled. ``'last_prune'``
            (default): the iteration after the run's last prune step (the
            fine-tune), from the shared run state; a run without a pruning
            hook is an error then.
        priority (str): Hook priority. Defaults to ``'LOWEST'``.
    """

    priority = 'LOWEST'

    def __init__(self, teacher_checkpoint, weight=1.0, temperature=1.0, begin='last_prune',
                 priority='LOWEST'):
        if not isinstance(teacher_checkpoint, str) or not teacher_checkpoint:
            raise ValueError('DistillationHook: teacher_checkpoint must be a checkpoint path, got '
                             f'{teacher_checkpoint!r}.')
        if float(weight) < 0 or float(temperature) <= 0:
            raise ValueError(f'DistillationHook: weight must be >= 0 and temperature > 0, got '
                             f'weight={weight!r}, temperature={temperature!r}.')
        if begin != 'last_prune' and (isinstance(begin, bool) or not isinstance(begin, int)
                                      or begin < 0):
            raise ValueError(f"DistillationHook: begin must be 'last_prune' or an iteration >= 0, "
                             f'got {begin!r}.')
        self.teacher_checkpoint = teacher_checkpoint
        self.weight, self.temperature = float(weight), float(temperature)
        self.begin = begin
        self.priority = priority
        self.teacher = None
        self.start = None          # the resolved first iteration
        self.last_loss = None      # the last distillation loss applied
        self._armed = False
        self._applied = False      # this iteration's forward was distilled
        self._inputs = None
        self._handles = []
        self._runner = None

    # ------------------------------------------------------------ set-up
    def before_run(self, runner):
        """Check that the teacher's file exists.

        Args:
            runner (Runner): The runner.

        Raises:
            FileNotFoundError: Naming the file and the config key.
        """
        super().before_run(runner)
        if self.weight == 0:
            return
        if '://' not in self.teacher_checkpoint and not osp.isfile(self.teacher_checkpoint):
            raise FileNotFoundError(
                f'DistillationHook: teacher_checkpoint {self.teacher_checkpoint!r} does not exist. '
                'Train the teacher first (for the ImageNet regime: tools/train.py '
                'configs/bench_effl0/pretrain_source.py) or set the config key '
                'distillation_hook.teacher_checkpoint (--cfg-options) to its file.')

    def before_train(self, runner):
        """Check the hook order, resolve ``begin``, build the teacher, attach the hooks.

        Args:
            runner (Runner): The runner.

        Raises:
            RuntimeError: When a hook acting in ``before_train_iter`` runs after
                this one, or ``begin='last_prune'`` in a run that does not prune.
        """
        super().before_train(runner)
        if self.weight == 0:
            print_log('[npdg] distillation off (weight 0)', logger='current')
            return
        self.check_last(list(runner.hooks))
        self.start = self.resolve_begin(run_state(runner).prune_iters)
        self._runner = runner
        self.teacher = self.build_teacher(runner.cfg.model, _bare(runner.model))
        self.attach(_bare(runner.model))
        print_log(f'[npdg] distillation from {self.teacher_checkpoint} from iteration '
                  f'{self.start} (weight {self.weight:g}, T {self.temperature:g})',
                  logger='current')

    def check_last(self, hooks):
        """Raise when a hook that acts in ``before_train_iter`` runs after this one.

        Args:
            hooks (Sequence[Hook]): The runner's hooks in calling order.
        """
        later = [h for h in hooks[hooks.index(self) + 1:] if _runs_before_iter(h)] \
            if self in hooks else []
        if later:
            names = ', '.join(f'{type(h).__name__} (priority {getattr(h, "priority", "?")})'
                              for h in later)
            raise RuntimeError(
                f'DistillationHook must be the last hook in before_train_iter (it arms itself for '
                f'the training step there), but {names} runs after it. Give those hooks a higher '
                'priority than the distillation hook (e.g. NORMAL).')

    def resolve_begin(self, prune_iters):
        """The first distilled iteration (0-based).

        Args:
            prune_iters (Sequence[int]): The run's prune iterations (shared state).

        Returns:
            int: ``begin``, or the last prune iteration for ``'last_prune'``
            (pruning after ``i`` iterations: iteration ``i`` is the first of the fine-tune).
        """
        if self.begin != 'last_prune':
            return int(self.begin)
        if not prune_iters:
            raise RuntimeError("DistillationHook: begin='last_prune' but the run does not prune "
                               '(no UnitPruningHook with prune_iters); set begin to an iteration.')
        return int(max(prune_iters))

    def build_teacher(self, model_cfg, student):
        """The frozen teacher: ``model_cfg`` with the teacher checkpoint's structure and weights.

        Args:
            model_cfg (dict): The config's model.
            student (nn.Module): The bare model trained (for the device).

        Returns:
            nn.Module: The teacher, in eval mode, without gradients.
        """
        import copy

        from npdg.pruning.structure import load_pruned_checkpoint
        teacher = MODELS.build(copy.deepcopy(model_cfg))
        load_pruned_checkpoint(teacher, self.teacher_checkpoint, strict=True)
        device = next(student.parameters()).device
        teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    def attach(self, model):
        """Hook the model's backbone (input) and decode head classifier (logits).

        Args:
            model (nn.Module): The bare segmentor.
        """
        self.detach()
        head = getattr(model, 'decode_head', None)
        if not hasattr(model, 'backbone') or not isinstance(getattr(head, 'conv_seg', None),
                                                            torch.nn.Module):
            raise TypeError(f'DistillationHook: the model ({type(model).__name__}) has no '
                            'backbone or no decode_head.conv_seg; distillation needs an mmseg '
                            'encoder-decoder.')
        # mmseg's decode heads call their own forward directly (not through __call__),
        # so the logits are caught at the classifier, conv_seg, which is called as a module
        self._handles = [
            model.backbone.register_forward_pre_hook(_Tap(self, model.backbone, '_keep_input')),
            head.conv_seg.register_forward_hook(_Tap(self, head.conv_seg, '_distil'))]

    def detach(self):
        """Remove the forward hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def on_pruned(self, runner):
        """Re-attach to the pruned model (its modules may have been rebuilt).

        Args:
            runner (Runner): The runner.
        """
        if self._handles:
            self.attach(_bare(runner.model))

    # ------------------------------------------------------------ per step
    def before_train_iter(self, runner, batch_idx, data_batch=None):
        """Arm for this iteration's training forward when inside the window.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index in the epoch.
            data_batch (dict, optional): The batch.
        """
        self._armed = self.start is not None and runner.iter >= self.start
        self._applied, self._inputs = False, None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Disarm and log the loss applied in this step.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index in the epoch.
            data_batch (dict, optional): The batch.
            outputs (dict, optional): The step's outputs.
        """
        applied = self._applied
        self._armed, self._applied, self._inputs = False, False, None
        hub = getattr(runner, 'message_hub', None)
        if applied and hub is not None and self.last_loss is not None:
            hub.update_scalar('train/loss_kd', self.last_loss)

    def after_run(self, runner):
        """Remove the hooks and drop the teacher.

        Args:
            runner (Runner): The runner.
        """
        self.detach()
        self.teacher = None

    def _keep_input(self, module, args):
        if self._armed and torch.is_grad_enabled() and not run_state(self._runner).side_pass:
            self._inputs = args[0]

    def _distil(self, module, args, output):
        inputs = self._inputs
        if not self._armed or not torch.is_tensor(inputs) or not torch.is_tensor(output) \
                or not output.requires_grad:
            return None
        with torch.no_grad():
            teacher_logits = self.teacher.decode_head(self.teacher.extract_feat(inputs))
        grad, self.last_loss = pixel_kd_grad(output, teacher_logits, self.temperature,
                                             self.weight)
        grad = grad * loss_scale(self._runner)
        output.register_hook(lambda g: g + grad.to(g.dtype))
        self._armed, self._applied, self._inputs = False, True, None
        return None
