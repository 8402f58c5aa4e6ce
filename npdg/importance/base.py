"""The importance interface: a class with one ``__call__``."""
from mmseg.registry import MODELS

IMPORTANCES = []


def register_importance(cls):
    """Register an importance in mmseg's MODELS registry and npdg's list.

    Args:
        cls (type): An :class:`Importance` subclass.

    Returns:
        type: ``cls``.
    """
    MODELS.register_module(module=cls)
    IMPORTANCES.append(cls.__name__)
    return cls


def build_importance(cfg):
    """Build an importance from a config dict (or pass an instance through).

    Args:
        cfg (dict | Importance): e.g. ``dict(type='BNScaleImportance')``.

    Returns:
        Importance: The importance.
    """
    if isinstance(cfg, Importance):
        return cfg
    if not isinstance(cfg, dict) or cfg.get('type') not in IMPORTANCES:
        name = cfg.get('type') if isinstance(cfg, dict) else cfg
        raise KeyError(f'Unknown importance {name!r}; registered: {sorted(IMPORTANCES)}.')
    return MODELS.build(cfg)


class Importance:
    """Scores the units of one layer; higher means more important.

    Subclasses implement ``__call__(units) -> Tensor`` for
    :class:`npdg.pruning.units.ChannelUnits` (coupled output channels; use
    ``units.gather`` to average per-layer values into the group's root index
    space) and :class:`npdg.pruning.units.HeadUnits` (attention heads).
    Return a float tensor of shape ``(units.num_units,)`` on the CPU.

    ``uses_threshold`` says whether the pruner's absolute threshold (e.g.
    |gamma| < 0.1) is meaningful for the scores; for other criteria only the
    ratio budget applies.
    """

    uses_threshold = False

    def __call__(self, units):
        raise NotImplementedError
