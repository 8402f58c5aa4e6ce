"""The order npdg's hooks need, checked once per run at ``before_train``.

mmengine calls hooks in priority order (ties in registration order), and a
config can change any hook's ``priority``. What npdg's correctness relies on
is written down here, once, and checked against the runner's real hook list,
so a config that breaks it stops with an error naming both hooks and their
priorities instead of training silently wrong.
"""
from mmengine.hooks import Hook  # noqa: F401  (the hooks checked are mmengine hooks)

# (earlier, later, why): ``earlier`` must come before ``later`` in runner.hooks
# whenever both are registered (class names, matched over each hook's MRO).
REQUIRED_ORDER = (
    ('RNGStateHook', 'StylePerturbationHook',
     'a resumed run restores the RNG before any hook draws a style'),
    ('RNGStateHook', 'SensitivityStatisticsHook',
     'a resumed run restores the RNG before the statistics draw styles and positions'),
    ('PrunedCheckpointHook', 'SensitivityStatisticsHook',
     'a pruned checkpoint resizes the model before the statistics restore per-channel sums'),
    ('PrunedCheckpointHook', 'UnitPruningHook',
     'a pruned checkpoint resizes the model before the pruning hook restores its progress'),
    ('PrunedCheckpointHook', 'AdaSAPHook',
     'a pruned checkpoint resizes the model before AdaSAP restores its per-unit radii'),
    ('SensitivityStatisticsHook', 'StylePerturbationHook',
     'the statistics observe the clean batch before the perturbation re-styles it'),
    ('StylePerturbationHook', 'AdaSAPHook',
     "AdaSAP's ascent pass trains on the perturbed batch"),
    ('UnitPruningHook', 'CheckpointHook',
     'a checkpoint saved at a prune iteration holds the pruned model'),
)


def _matches(hook, name):
    return any(cls.__name__ == name for cls in type(hook).__mro__)


def _priority(hook):
    priority = getattr(hook, 'priority', None)
    return getattr(priority, 'name', priority)


def order_violations(hooks, required=REQUIRED_ORDER):
    """The required orderings a hook list breaks.

    Args:
        hooks (Sequence[Hook]): In calling order (``runner.hooks``).
        required (Sequence[tuple]): ``(earlier, later, why)`` class names.

    Returns:
        list[str]: One message per broken pair (empty when all hold).
    """
    problems = []
    for earlier, later, why in required:
        first = [i for i, h in enumerate(hooks) if _matches(h, earlier)]
        second = [i for i, h in enumerate(hooks) if _matches(h, later)]
        for i in first:
            for j in second:
                if i > j:
                    problems.append(
                        f'{earlier} (priority {_priority(hooks[i])}) runs after {later} '
                        f'(priority {_priority(hooks[j])}), but {why}. Give {earlier} a higher '
                        f'priority than {later} (lower number), or leave both at their '
                        'defaults.')
    return problems


def check_hook_order(runner):
    """Raise when the runner's hooks break :data:`REQUIRED_ORDER`.

    Args:
        runner (Runner): The runner (its ``hooks`` are in calling order).

    Raises:
        RuntimeError: Naming every hook pair out of order, with priorities.
    """
    problems = order_violations(list(getattr(runner, 'hooks', [])))
    if problems:
        raise RuntimeError('npdg: the hook order breaks what npdg relies on:\n  - '
                           + '\n  - '.join(problems))
