"""NPDG's sensitivity w used directly as the criterion (no sparse training)."""
from .base import Importance, register_importance
from .taylor import _require


@register_importance
class SensitivityImportance(Importance):
    """Importance = 1 - w: the most domain-sensitive and redundant units go first.

    ``w = lam * U + (1 - lam) * B`` (each in [0, 1] per layer) comes from
    :class:`SensitivityStatisticsHook` through the scoring context. This is
    the "prune by w directly" ablation of NPDG: the statistics choose, no
    sparse training moves the scales. Channels: w averaged over the group's
    BNs; heads: the head's w.
    """

    def __call__(self, units, context=None):
        context = _require(context, 'SensitivityImportance')
        stats = context.statistics
        if not stats:
            raise RuntimeError(
                'SensitivityImportance: no sensitivity statistics yet. Add '
                'SensitivityStatisticsHook to custom_hooks and make sure it refreshes before '
                'the first prune iteration (interval <= prune iteration).')
        if units.kind == 'head':
            w = stats.get(units.name, {}).get('w')
            if w is None or w.numel() != units.num_units:
                raise RuntimeError(f'SensitivityImportance: no statistics for {units.name}.')
            return 1.0 - w.double().cpu()

        def value(name, bn):
            w = stats.get(name, {}).get('w')
            return w if w is not None and w.numel() == bn.num_features else None
        return 1.0 - units.gather(value)
