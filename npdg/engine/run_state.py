"""The one object npdg's hooks share in a run.

Hooks never look each other up. Each publishes what it owns into the run's
:class:`NpdgRunState` (``run_state(runner)``) and reads what others own from
it:

==================  ==============================  ==========================
field               written by (when)               read by (when)
==================  ==============================  ==========================
``perturbation``    StylePerturbationHook           statistics hook, scoring
                    (``before_run``)                (``before_train`` and later)
``statistics``,     SensitivityStatisticsHook       sparsity hook (every
``omega``           (every refresh, resume, prune)  iteration), pruning hook
``prune_iters``     UnitPruningHook (``__init__``   sparsity, AdaSAP and
                    via ``before_run``)             distillation hooks
                                                    (``before_train``)
``prunable_layers`` UnitPruningHook (``before_run``, sparsity hook
                    when ``ignored_units`` is set)  (``before_train``)
``side_pass``       AdaSAPHook (its own gradient    SensitivitySparsityHook
                    pass)                           (gradient hooks),
                                                    DistillationHook (forward)
``clean_weights``   AdaSAPHook (while the weights   SensitivitySparsityHook
                    sit at ``w + eps``)             (the sign of clean gamma)
==================  ==============================  ==========================

Ordering is explicit: everything is *published* in ``before_run`` (or
later) and *read* in ``before_train`` or later, so hook priorities only
matter within an iteration (statistics on the clean batch before the
perturbation re-styles it). After a structural prune the pruning hook calls
:meth:`NpdgRunState.notify_pruned`, which calls the subscribed callbacks in
subscription order (hooks subscribe in ``before_run``).
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

ATTR = 'npdg_state'


@dataclass
class NpdgRunState:
    """State shared by npdg's hooks in one run.

    Attributes:
        perturbation (nn.Module, optional): The image-level style perturbation
            of the run (re-used to render styles for statistics and scoring).
        statistics (dict): Latest sensitivity scores per observed layer
            (``{'unary_norm', 'binary_norm', 'w'}``); empty until the first
            refresh and after a prune.
        omega (dict): Latest sparsity weights per observed layer.
        prune_iters (list[int]): Iterations after which units are pruned.
        prunable_layers (set[str], optional): Unit layers (BN, attention
            module names) the pruning hook may remove; None: every unit layer.
        order_checked (bool): The hook order was checked
            (:func:`npdg.engine.check_hook_order`, once per run).
        side_pass (bool): True while a hook takes a gradient of its own
            (AdaSAP's pass at ``w``): gradient hooks that shape the training
            step's gradient (the sparsity subgradient) stay out of it.
        clean_weights (dict): ``id(parameter) -> clean value`` while a hook
            has moved the weights for the step (AdaSAP's ``w + eps``); a
            regulariser's gradient is taken at the clean value.
    """
    perturbation: Optional[object] = None
    statistics: Dict = field(default_factory=dict)
    omega: Dict = field(default_factory=dict)
    prune_iters: List[int] = field(default_factory=list)
    prunable_layers: Optional[set] = None
    side_pass: bool = False
    order_checked: bool = False
    clean_weights: Dict = field(default_factory=dict)
    _on_pruned: List[Callable] = field(default_factory=list, repr=False)

    def subscribe_pruned(self, callback):
        """Call ``callback(runner)`` after every structural prune (once per callback).

        Args:
            callback (Callable): Takes the runner.
        """
        if callback not in self._on_pruned:
            self._on_pruned.append(callback)

    def notify_pruned(self, runner):
        """Tell every subscriber the model's structure changed.

        Args:
            runner (Runner): The runner (its model is already pruned).
        """
        for callback in list(self._on_pruned):
            callback(runner)


def run_state(runner):
    """The run's shared state (created on first use, stored on the runner).

    Args:
        runner (Runner): The mmengine runner (any object that takes attributes).

    Returns:
        NpdgRunState: The state.
    """
    state = getattr(runner, ATTR, None)
    if state is None:
        state = NpdgRunState()
        setattr(runner, ATTR, state)
    return state
