"""The contract every npdg hook follows.

* **Shared state**: hooks never look each other up; they publish into and
  read from the run's :class:`npdg.hooks.run_state.NpdgRunState`
  (:meth:`NpdgHook.shared`). Published in ``before_run``, read in
  ``before_train`` or later.
* **Structure changes**: a hook that defines ``on_pruned(runner)`` is
  subscribed to the run's prune notifications in ``before_run``.
* **Iteration windows**: a phase that ends "at the run's last prune step"
  asks :meth:`NpdgHook.until_last_prune` (one rule for every hook).
* **Checkpoint state**: a hook with a ``state_name`` keeps its resumable
  state in ``checkpoint['meta']['npdg'][state_name]``
  (:mod:`npdg.engine.ckpt_state`; old layouts still read).
* **Per-head attention**: a hook with ``needs_per_head_attention`` sees
  SegFormer's heads one by one. ``NpdgRunner`` converts the attention when it
  builds the model; under mmengine's plain Runner the first such hook
  converts it in ``before_run`` and rebuilds the optimizer, schedulers and
  DDP wrapper (:func:`npdg.engine.model_prep.ensure_per_head_attention`).
* **Order**: the hook order npdg relies on is checked once per run in
  ``before_train`` (:mod:`npdg.engine.hook_order`).

Subclasses that override ``before_run`` / ``before_train`` call ``super()``.
"""
from mmengine.hooks import Hook

from . import ckpt_state
from .hook_order import check_hook_order
from .run_state import run_state


class NpdgHook(Hook):
    """Base of npdg's hooks (see the module docstring for the contract).

    Attributes:
        state_name (str, optional): The hook's name in ``meta['npdg']``.
        needs_per_head_attention (bool): The hook observes, scores or removes
            attention heads one by one.
    """

    state_name = None
    needs_per_head_attention = False

    # ------------------------------------------------------------ run state
    @staticmethod
    def shared(runner):
        """The run's shared state (:func:`npdg.hooks.run_state.run_state`)."""
        return run_state(runner)

    def before_run(self, runner):
        """Per-head attention where needed; subscribe ``on_pruned`` (when defined)
        to the run's prune notifications.

        Args:
            runner (Runner): The runner.
        """
        if self.needs_per_head_attention:
            from .model_prep import ensure_per_head_attention
            ensure_per_head_attention(runner)
        callback = getattr(self, 'on_pruned', None)
        if callable(callback):
            run_state(runner).subscribe_pruned(callback)

    def before_train(self, runner):
        """Check the hook order once per run.

        Args:
            runner (Runner): The runner.

        Raises:
            RuntimeError: When hooks are out of the order npdg relies on.
        """
        state = run_state(runner)
        if not state.order_checked:
            check_hook_order(runner)
            state.order_checked = True

    # ------------------------------------------------------------ windows
    @staticmethod
    def until_last_prune(runner, end=None):
        """End of a phase that lasts until the run's last prune step.

        Args:
            runner (Runner): The runner (after ``before_run``).
            end (int, optional): An explicit end, returned as is.

        Returns:
            int | None: ``end`` when given, else the last prune iteration of
            the run, else None (the run does not prune: no end).
        """
        if end is not None:
            return int(end)
        prune_iters = run_state(runner).prune_iters
        return int(max(prune_iters)) if prune_iters else None

    # ------------------------------------------------------------ checkpoint
    def save_state(self, checkpoint, value):
        """Store this hook's state in ``checkpoint['meta']['npdg'][state_name]``."""
        ckpt_state.put(checkpoint, self.state_name, value)

    def resumed_state(self, runner, checkpoint):
        """This hook's state in ``checkpoint`` when the run resumes from it, else None."""
        return ckpt_state.resumed(runner, checkpoint, self.state_name)
