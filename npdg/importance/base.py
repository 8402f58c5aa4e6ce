"""The importance interface: a class with one ``__call__``."""
import torch
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


def normalize(scores, normalizer):
    """Divide one layer's scores by their mean, max or sum (explicit normaliser).

    Args:
        scores (Tensor): One layer's per-unit scores.
        normalizer (str | None): ``None`` (unchanged), ``'mean'``, ``'max'``
            or ``'sum'``.

    Returns:
        Tensor: The normalised scores (float64).
    """
    scores = scores.double()
    if normalizer is None:
        return scores
    ops = dict(mean=torch.mean, max=torch.max, sum=torch.sum)
    if normalizer not in ops:
        raise ValueError(f"normalizer must be None, 'mean', 'max' or 'sum', got {normalizer!r}.")
    denom = ops[normalizer](scores.abs())
    return scores / denom if float(denom) > 0 else scores


class Importance:
    """Scores the units of one layer; higher means more important.

    Subclasses implement ``__call__(units, context=None) -> Tensor`` for
    :class:`npdg.pruning.units.ChannelUnits` (coupled output channels; use
    ``units.gather`` to average per-layer values into the group's root index
    space) and :class:`npdg.pruning.units.HeadUnits` (attention heads).
    Return a float tensor of shape ``(units.num_units,)`` on the CPU.

    ``context`` is the step's :class:`npdg.importance.ScoringContext`: a
    criterion that needs data (gradients, feature maps, statistics) asks it,
    and the context runs and caches the passes, shared by every layer's call.
    Criteria that need nothing but the weights ignore it.

    ``uses_threshold`` says whether the pruner's absolute threshold (e.g.
    |gamma| < 0.1) is meaningful for the scores; for other criteria only the
    ratio budget applies.

    ``unit_kinds`` lists the unit kinds the criterion can score: every
    criterion scores ``'channel'`` and ``'head'`` units; weight and gradient
    criteria also ``'width'`` units (channel groups without BN, which have no
    scale and no observed statistics).
    """

    uses_threshold = False
    unit_kinds = ('channel', 'head')

    def __call__(self, units, context=None):
        raise NotImplementedError
