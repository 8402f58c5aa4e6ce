"""What a criterion may look at when it scores units: one object per prune step.

A :class:`ScoringContext` is built once per prune step and handed to every
criterion with every layer's units. It joins three parts and owns none of
their work:

* the data (:class:`~npdg.importance.scoring_data.ScoringData`): clean source
  batches drawn without touching the training RNG, their pseudo-domains (the
  same images re-rendered by the run's style perturbation, one style per
  domain) and, for oracle options only, real target images;
* the passes over it (:mod:`npdg.importance.passes`): risk gradients over
  pseudo-domains, per-sample squared gradients (diagonal Fisher), and
  dataset-mean feature maps, each run at most once per step (memoised here by
  its arguments), so no criterion has a loop of its own and two criteria, the
  per-layer calls of one, or a FLOPs budget's trial prunes never repeat one;
* what the run already knows: NPDG's sensitivity statistics and the units
  being scored.
"""
from . import passes
from .scoring_data import ScoringData
from .unit_params import unit_parameter_names


class ScoringContext:
    """The scoring data, the memoised passes over it, and the run's statistics.

    Args:
        model (nn.Module): Bare segmentor.
        batches (list[dict] | Callable, optional): Clean raw batches, or a
            callable returning them (drawn on first use).
        perturbation (nn.Module, optional): Image-level style perturbation
            rendering the pseudo-domains (the run's; ``AdvStyle`` when None).
        statistics (dict, optional): NPDG's per-layer sensitivity scores
            (``{layer: {'unary_norm', 'binary_norm', 'w'}}``).
        target_batches (list[dict] | Callable, optional): Unlabelled images
            of a real target domain, for criteria's explicitly named oracle
            options only.
        seed (int): Seed of the pseudo-domains' style draws.
        units (list, optional): The units being scored (set by the pruner).
    """

    def __init__(self, model, batches=None, perturbation=None, statistics=None,
                 target_batches=None, seed=0, units=None):
        self.model = model
        self.data = ScoringData(model.data_preprocessor, batches, target_batches,
                                perturbation, seed)
        self.statistics = statistics or None
        self.units = units
        self._memo = {}

    @property
    def seed(self):
        """Seed of the pseudo-domains' style draws."""
        return self.data.seed

    @property
    def perturbation(self):
        """The image-level style renderer of the pseudo-domains."""
        return self.data.perturbation

    # ----------------------------------------------------------- data
    def batches(self, which='source'):
        """The raw batches (see :meth:`ScoringData.batches`)."""
        return self.data.batches(which)

    def processed(self, which='source'):
        """``[(inputs, data_samples)]`` (see :meth:`ScoringData.processed`)."""
        return self.data.processed(which)

    def domain_inputs(self, batch_index, domain):
        """One batch in one pseudo-domain (see :meth:`ScoringData.domain_inputs`)."""
        return self.data.domain_inputs(batch_index, domain)

    def loss(self, inputs, data_samples):
        """The loss closure: the segmentor's summed training losses."""
        return passes.seg_loss(self.model, inputs, data_samples)

    def _unit_params(self):
        names = unit_parameter_names(self.units or [])
        params = dict(self.model.named_parameters())
        missing = sorted(n for n in names if n not in params)
        if missing:
            raise KeyError(f'ScoringContext: unit parameters {missing[:3]} are not parameters '
                           'of the model (units built for another structure?).')
        return {n: params[n] for n in sorted(names)}

    def _once(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    # ----------------------------------------------------------- passes
    def gradients(self, num_domains=0, beta=0.0):
        """Per batch, the gradient of the pseudo-domain risk (:func:`passes.risk_gradients`).

        Args:
            num_domains (int): Style-drawn pseudo-domains besides the clean one.
            beta (float): Weight of the variance of the domain risks.

        Returns:
            tuple[dict, list[dict]]: The units' parameters by name and, per
            batch, ``{name: gradient}`` (detached, CPU).
        """
        params = self._unit_params()
        grads = self._once(('grad', int(num_domains), float(beta)), lambda: passes.risk_gradients(
            self.model, self.data, params, num_domains, beta))
        return params, grads

    def squared_gradients(self):
        """Per parameter, ``E[g^2]`` over samples (:func:`passes.squared_gradients`).

        Returns:
            tuple[dict, dict]: The parameters by name and ``{name: E[g^2]}`` (CPU).
        """
        params = self._unit_params()
        return params, self._once('grad_sq', lambda: passes.squared_gradients(
            self.model, self.data, params))

    def mean_maps(self, domain='styled', size=None):
        """Dataset-mean feature maps of every observed layer (:func:`passes.mean_maps`).

        Args:
            domain (str): ``'clean'``, ``'styled'`` or ``'target'`` (oracle).
            size (tuple, optional): Common (h, w) per layer.

        Returns:
            dict[str, Tensor]: ``{layer name: (C, h, w)}`` float64 means.
        """
        return self._once(('maps', domain, size), lambda: passes.mean_maps(
            self.model, self.data, domain, size))
