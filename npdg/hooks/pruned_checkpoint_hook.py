"""Hook that saves a pruned model's structure and rebuilds it on load."""
import copy
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.optim import OptimWrapper
from mmseg.registry import HOOKS

from npdg.engine import NpdgHook, ckpt_state

from ..analysis.inference_path import unwrap_model
from ..pruning.structure import add_structure, fit_model_to_checkpoint
from ..utils import resume as resume_utils
from ..utils.checkpoint_io import GUARD_KEY, PrunedModelGuard


def _optimizer_built(runner):
    """Whether the runner's optimizer wrapper exists (training), not a cfg."""
    return isinstance(getattr(runner, 'optim_wrapper', None), OptimWrapper)


@HOOKS.register_module()
class PrunedCheckpointHook(NpdgHook):
    """Carry a pruned model's structure in its checkpoints; rebuild on load.

    ``before_save_checkpoint`` stores the structure of ``runner.model``
    (:func:`npdg.pruning.capture_structure`, plain data) in
    ``checkpoint['meta']['npdg']['structure']`` on every save (for an unpruned
    model it simply records the config's shapes).

    ``after_load_checkpoint`` (runs after the file is read and before the
    weights are copied, for ``load_from`` and ``resume`` in training and for
    val/test) applies the stored structure to the freshly built model
    (:func:`npdg.pruning.apply_structure`; mmseg's packed MiT attention is
    converted to per-head attention first if the structure needs it), then
    checks every tensor shape against ``checkpoint['state_dict']`` and raises
    on any mismatch, with or without a structure: mmengine's
    ``load_checkpoint(strict=False)`` would only log "size mismatch" and
    evaluate a half-initialised model.

    When training (the optimizer wrapper is already built when checkpoints
    are loaded) and the model changed, the runner is brought in line:

    * parameters were resized: :func:`npdg.pruning.optimizer_sync.
      rebuild_after_prune` swaps the new parameters into the optimizer's
      param groups by name (state reset; ``resume`` loads the saved state
      right after), re-wraps a (MM)DistributedDataParallel model with
      ``runner.wrap_model`` (the old reducer holds the old parameters) and
      rebuilds ``EMAHook`` copies;
    * attention was converted here (the training config does not convert in
      ``before_run``): parameters were replaced by different ones, so the
      optimizer wrapper, param schedulers and DDP wrapper are rebuilt from
      the config (:func:`npdg.engine.model_prep.rebuild_optimization`), with
      ``auto_scale_lr`` applied again.

    In val/test a DDP wrapper is kept: its ``val_step``/``test_step`` call
    the inner module directly and never use the stale reducer.

    **What ran** (:mod:`npdg.utils.resume`): every checkpoint also carries the
    run's settings (``meta['npdg']['settings']``: the custom hooks' effective
    arguments, the config's named settings and the run's history, one segment
    per resume), and ``<work_dir>/settings_ran.json`` is rewritten at the start
    and at every save. On resume the new run's settings are compared with the
    checkpoint's first: a setting whose effect the checkpoint already fixed (a
    done prune step's ratio, the sparsity of a finished sparse phase, ...)
    stops the run with :class:`npdg.utils.resume.ResumeSettingsError`, or,
    with ``resume_settings='warn'`` in the config, warns, and the work dir's
    dumped config is annotated with what did not take effect. Paths of the
    message hub that point into another run's folder (a copied work dir) are
    re-pointed at this work dir, so that the checkpoint hook never deletes the
    other run's files.

    When the saved model's tensors differ from the ones its config built
    (pruned, or attention converted), the checkpoint also carries a
    :class:`npdg.utils.checkpoint_io.PrunedModelGuard`, so that tools that
    never import npdg fail loudly instead of loading it partly.

    Args:
        strict (bool): Whether missing/unexpected keys are errors too (shape
            mismatches always are). Defaults to True.
        check_unstructured (bool): Whether checkpoints without a structure
            are checked too. Defaults to True; npdg adds this hook with False
            to Runners whose config lacks it (mmengine's lenient loading then
            stays for plain checkpoints, e.g. fine-tuning to other classes).
        priority (int | str): Hook priority. Defaults to ``'VERY_HIGH'`` so
            the model is resized before other hooks (e.g. ``EMAHook``) load
            weights into it.
    """

    def __init__(self, strict=True, check_unstructured=True, priority='VERY_HIGH'):
        self.strict = strict
        self.check_unstructured = check_unstructured
        self.priority = priority
        self._built_shapes = None
        self._settings = None

    @staticmethod
    def _shapes(runner):
        model = unwrap_model(runner.model)
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}

    def before_run(self, runner):
        """Remember the tensors of the model as its config built it.

        Args:
            runner (Runner): The runner (before any checkpoint is loaded).
        """
        super().before_run(runner)
        if self._built_shapes is None:
            self._built_shapes = self._shapes(runner)
        self._settings = resume_utils.settings_record(runner.cfg)
        load_from = getattr(runner, '_load_from', None)
        if load_from and not getattr(runner, '_resume', False):
            self._settings['history'][0]['load_from'] = load_from  # fine-tuned from it

    def before_train(self, runner):
        """Record what this run starts with (``settings_ran.json``).

        Args:
            runner (Runner): The runner (after any resume).
        """
        super().before_train(runner)  # checks the hook order
        self._write_settings(runner)

    def after_train(self, runner):
        """Record where the run ended.

        Args:
            runner (Runner): The runner.
        """
        if self._settings is not None:
            self._settings['history'][-1]['to_iter'] = runner.iter
        self._write_settings(runner)

    def _write_settings(self, runner):
        if self._settings is not None and is_main_process():
            resume_utils.write_settings_ran(runner.work_dir, self._settings)

    def before_save_checkpoint(self, runner, checkpoint):
        """Add the structure (and, for a changed model, the guard) to the checkpoint.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint about to be saved.
        """
        add_structure(checkpoint, runner.model)
        if self._settings is not None:
            self._settings['history'][-1]['to_iter'] = checkpoint['meta'].get('iter')
            ckpt_state.put(checkpoint, 'settings', copy.deepcopy(self._settings))
            self._write_settings(runner)
        if self._built_shapes is not None and self._shapes(runner) != self._built_shapes:
            # First in the file, so that any loader without npdg stops on it.
            items = [(k, v) for k, v in checkpoint.items() if k != GUARD_KEY]
            checkpoint.clear()
            checkpoint[GUARD_KEY] = PrunedModelGuard()
            checkpoint.update(items)

    def after_load_checkpoint(self, runner, checkpoint):
        """Resize the model to the checkpoint's structure; check strictly.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint just read.

        Raises:
            RuntimeError: If any tensor shape (or, when ``strict``, any key)
                of the checkpoint does not match the model.
            ResumeSettingsError: When resuming with a changed setting whose
                effect the checkpoint fixed (``resume_settings='error'``).
        """
        if getattr(runner, '_resume', False):
            self._check_resume(runner, checkpoint)
        model = unwrap_model(runner.model)
        old_params = dict(model.named_parameters())
        change = fit_model_to_checkpoint(model, checkpoint, strict=self.strict,
                                         check_unstructured=self.check_unstructured)
        if change is not None and (change['converted'] or change['resized']):
            self._log_change(runner, change)
            self._sync_runner(runner, change, old_params)

    def _check_resume(self, runner, checkpoint):
        """Compare settings with the checkpoint's; re-point copied paths."""
        cfg = runner.cfg
        mode = resume_utils.resume_option(cfg, 'resume_settings')
        source = getattr(runner, '_load_from', None) or \
            f'the latest checkpoint of {runner.work_dir}'
        changes, self._settings = resume_utils.check_resume_settings(
            cfg, checkpoint, source, mode, runner.work_dir)
        if is_main_process():
            name = osp.basename(cfg.filename) if getattr(cfg, 'filename', None) else \
                f'{runner.timestamp}.py'
            resume_utils.annotate_dumped_config(
                osp.join(runner.work_dir, name), source,
                (checkpoint.get('meta') or {}).get('iter'), changes)
        self._repoint_runtime_paths(runner, checkpoint)

    @staticmethod
    def _repoint_runtime_paths(runner, checkpoint):
        """Checkpoint paths of the message hub that name another run's folder.

        A copied work dir's checkpoint still holds the original run's
        ``last_ckpt`` and ``best_ckpt`` paths; CheckpointHook would delete the
        *original's* best checkpoint when a better one comes. With the
        default ``out_dir`` they are re-pointed at this work dir.
        """
        info = (checkpoint.get('message_hub') or {}).get('runtime_info')
        last = info.get('last_ckpt') if isinstance(info, dict) else None
        if not isinstance(last, str) or '://' in last:
            return
        hooks = [h for h in getattr(runner, 'hooks', []) if type(h).__name__ == 'CheckpointHook']
        if not hooks or getattr(hooks[0], 'out_dir', None) not in (None, runner.work_dir):
            return
        old_dir = osp.dirname(last)
        if osp.realpath(old_dir) == osp.realpath(runner.work_dir):
            return
        moved = []
        for key, value in info.items():
            if (key == 'last_ckpt' or key.startswith('best_ckpt')) and \
                    isinstance(value, str) and osp.dirname(value) == old_dir:
                info[key] = osp.join(runner.work_dir, osp.basename(value))
                moved.append(key)
        if moved:
            runner.logger.info(f'[npdg] the checkpoint was written in {old_dir}: '
                               f'{", ".join(moved)} re-pointed into {runner.work_dir}.')

    @staticmethod
    def _log_change(runner, change):
        """Log how the model was changed."""
        runner.logger.info(
            f'[npdg] applied the checkpoint\'s pruned structure: '
            f'{len(change["resized"])} tensors resized, '
            f'{change["converted"]} attention modules converted to '
            'per-head attention.')

    @staticmethod
    def _sync_runner(runner, change, old_params):
        """Re-point optimizer, schedulers, DDP and EMA at the new parameters.

        Args:
            runner (Runner): The runner.
            change (dict): Output of ``apply_structure``.
            old_params (dict): Parameters by name before the change.
        """
        if not _optimizer_built(runner):
            return  # val/test: nothing holds the old parameters
        if change['converted']:
            from npdg.engine.model_prep import rebuild_optimization
            rebuild_optimization(runner)
            runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
            return
        from npdg.engine.rebuild import rebuild_after_prune
        kept = {name: None for name in change['resized']
                if name in old_params}
        rebuild_after_prune(runner, old_params, kept, reset_state=True)
