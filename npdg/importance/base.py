"""The importance interface: a class with one ``__call__``, in npdg's own registry."""
import inspect

import torch
from mmengine.registry import Registry

# npdg's criteria registry (criteria are not modules, so not in mmseg's MODELS)
CRITERIA = Registry('npdg pruning criterion', scope='npdg')
IMPORTANCES = []  # registered names, in registration order (the tests parametrise over it)


def register_importance(cls):
    """Register a criterion in npdg's :data:`CRITERIA` registry.

    Args:
        cls (type): An :class:`Importance` subclass.

    Returns:
        type: ``cls``.
    """
    CRITERIA.register_module(module=cls)
    IMPORTANCES.append(cls.__name__)
    return cls


def check_signature(importance):
    """A criterion must be callable as ``importance(units, context)``.

    Args:
        importance (Importance): The built criterion.

    Returns:
        Importance: ``importance``.

    Raises:
        TypeError: For a criterion with the old ``__call__(self, units)``,
            naming the class and the fix.
    """
    try:
        inspect.signature(importance.__call__).bind(object(), None)
    except TypeError:
        raise TypeError(
            f'{type(importance).__name__}.__call__ must take (units, context): npdg hands '
            'every criterion the step\'s scoring context (npdg.importance.ScoringContext). '
            'Write it as `def __call__(self, units, context=None)` (a criterion that needs '
            'no data ignores the context).') from None
    return importance


def build_importance(cfg):
    """Build a criterion from a config dict (or pass an instance through), checked.

    Args:
        cfg (dict | Importance): e.g. ``dict(type='BNScaleImportance')``.

    Returns:
        Importance: The criterion.

    Raises:
        KeyError: For an unknown name (and for a criterion registered the
            old way, in mmseg's ``MODELS``, with the fix).
        TypeError: For a criterion without the ``(units, context)`` call.
    """
    if isinstance(cfg, Importance):
        return check_signature(cfg)
    name = cfg.get('type') if isinstance(cfg, dict) else cfg
    if not isinstance(cfg, dict) or name not in IMPORTANCES:
        from mmseg.registry import MODELS
        if isinstance(name, str) and MODELS.get(name) is not None:
            raise KeyError(
                f'{name!r} is registered in mmseg\'s MODELS registry, where npdg looked for '
                'criteria before; criteria now have their own registry. Decorate the class '
                'with @npdg.importance.register_importance instead of '
                '@MODELS.register_module().')
        raise KeyError(f'Unknown importance {name!r}; registered: {sorted(IMPORTANCES)}.')
    # npdg's own registry, looked up directly: mmengine's scoped build would warn
    # that mmseg's default scope is not in this registry's tree.
    args = dict(cfg)
    return check_signature(CRITERIA.get(args.pop('type'))(**args))


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
