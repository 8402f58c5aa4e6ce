"""What a criterion may look at when it scores units: one shared, cached machinery.

A :class:`ScoringContext` is built once per prune step and handed to every
criterion with every layer's units. It owns the passes over data, so no
criterion has a loop of its own and two criteria (or the per-layer calls of
one criterion, or the trial prunes of a FLOPs budget) never run the same pass
twice:

* the model (bare segmentor) and the units being scored;
* clean source batches (:class:`ScoringBatches` draws them from the training
  set without touching the training loader's sampler) and their
  *pseudo-domains*: the same images re-rendered by the run's style
  perturbation with a fixed style draw per domain;
* a loss closure (the segmentor's summed training losses);
* gradients of an objective over pseudo-domain losses, per batch;
* per-sample squared gradients (diagonal Fisher / Hessian estimate);
* dataset-mean feature maps of every observed layer on clean, styled or
  (oracle only) real target images;
* NPDG's sensitivity statistics, when the run collects them.

Passes run with the model in eval mode (BN uses its running statistics and
dropout is off), so they are deterministic, leave BN statistics and
``.grad`` untouched, and per-sample gradients are truly per sample.
"""
import random

import numpy as np
import torch
import torch.nn.functional as F

from .unit_params import unit_parameter_names


class ScoringBatches:
    """Fixed batches for scoring, drawn from a dataset with their own seed.

    The indices come from a generator seeded by ``seed`` (the same on every
    rank, so every rank scores the same images); the dataset's pipeline
    (augmentation included) runs with the global ``random``/``numpy``/``torch``
    states saved and restored, so drawing them changes nothing in training.

    Args:
        dataset (Dataset): e.g. ``runner.train_dataloader.dataset``.
        collate_fn (Callable): The loader's collate function.
        batch_size (int): Images per batch.
        num_batches (int): Batches.
        seed (int): Seed of the draw.
    """

    def __init__(self, dataset, collate_fn, batch_size, num_batches, seed=0):
        self.dataset, self.collate_fn = dataset, collate_fn
        self.batch_size, self.num_batches, self.seed = int(batch_size), int(num_batches), seed

    def __call__(self):
        """Draw the batches.

        Returns:
            list[dict]: Collated raw batches (``inputs``, ``data_samples``).
        """
        gen = torch.Generator().manual_seed(int(self.seed))
        count = self.batch_size * self.num_batches
        order = torch.randperm(len(self.dataset), generator=gen).tolist()
        order = (order * (count // max(1, len(order)) + 1))[:count]
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            random.seed(int(self.seed))
            np.random.seed(int(self.seed) % (2 ** 32))
            torch.manual_seed(int(self.seed))
            return [self.collate_fn([self.dataset[i] for i in order[b:b + self.batch_size]])
                    for b in range(0, count, self.batch_size)]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


def seg_loss(model, inputs, data_samples):
    """The segmentor's training objective: the sum of its ``loss*`` terms.

    Args:
        model (nn.Module): Bare segmentor.
        inputs (Tensor): Normalised images (B, 3, H, W).
        data_samples (list): Their data samples (labels).

    Returns:
        Tensor: Scalar loss.
    """
    losses = model.loss(inputs, data_samples)
    return sum(v for k, v in losses.items() if 'loss' in k)


def _risk(losses, beta):
    """mean_d R_d + beta * Var_d R_d (population variance over domains)."""
    stacked = torch.stack(list(losses))
    mean = stacked.mean()
    if beta == 0:
        return mean
    return mean + beta * ((stacked - mean) ** 2).mean()


class ScoringContext:
    """The shared scoring machinery of one prune step (see the module docstring).

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
        self._batches = batches
        self._target_batches = target_batches
        self._perturbation = perturbation
        self.statistics = statistics or None
        self.seed = int(seed)
        self.units = units
        self._cache = {}

    # ----------------------------------------------------------- data
    def batches(self, which='source'):
        """The raw batches (drawn once).

        Args:
            which (str): ``'source'`` or ``'target'`` (oracle).

        Returns:
            list[dict]: Raw batches.

        Raises:
            RuntimeError: When the context has none (names what to configure).
        """
        attr = '_batches' if which == 'source' else '_target_batches'
        value = getattr(self, attr)
        if callable(value):
            value = value()
            setattr(self, attr, value)
        if not value:
            if which == 'target':
                raise RuntimeError(
                    'This criterion asked for real target images (an oracle option), but none '
                    "were given: set UnitPruningHook(scoring=dict(target_dataset=...)) or "
                    "use the default, style-perturbed source images.")
            raise RuntimeError('This criterion needs data but the scoring context has no '
                               'batches (UnitPruningHook needs a train dataloader).')
        return value

    @property
    def perturbation(self):
        """The image-level style renderer of the pseudo-domains."""
        if self._perturbation is None:
            from npdg.perturbation import build_perturbation
            self._perturbation = build_perturbation(dict(type='AdvStyle'))
        return self._perturbation

    def _norm(self):
        from npdg.perturbation.base import norm_args_from_preprocessor
        return norm_args_from_preprocessor(self.model.data_preprocessor)

    def processed(self, which='source'):
        """Batches through the data preprocessor: ``[(inputs, data_samples)]``.

        Args:
            which (str): ``'source'`` or ``'target'``.

        Returns:
            list[tuple[Tensor, list]]: Normalised inputs and data samples.
        """
        key = ('processed', which)
        if key not in self._cache:
            pre = self.model.data_preprocessor
            out = []
            with torch.no_grad():
                for batch in self.batches(which):
                    data = pre(dict(inputs=list(batch['inputs']),
                                    data_samples=list(batch['data_samples'])), True)
                    out.append((data['inputs'], data['data_samples']))
            self._cache[key] = out
        return self._cache[key]

    def domain_inputs(self, batch_index, domain):
        """Normalised inputs of one batch in one pseudo-domain.

        Domain 0 is the clean images; domain ``d >= 1`` is every image of the
        batch rendered in one style, drawn once per domain from
        ``seed`` and ``d`` (the same style for all images and batches: a
        consistent pseudo-domain).

        Args:
            batch_index (int): Index into :meth:`processed`.
            domain (int): Pseudo-domain.

        Returns:
            Tensor: (B, 3, H, W) normalised images.
        """
        inputs, _ = self.processed()[batch_index]
        if domain == 0:
            return inputs
        key = ('domain', batch_index, domain)
        if key not in self._cache:
            from npdg.perturbation import denormalize, normalize
            norm = self._norm()
            pert = self.perturbation
            with torch.no_grad():
                rgb = denormalize(inputs, **norm).clamp(0, 255)
                gen = torch.Generator().manual_seed(self.seed * 1000003 + 7919 * domain)
                ctx = pert.prepare(rgb)
                style = pert.init_style(ctx, 1, gen)
                style = tuple(v[:1].expand_as(v).contiguous() if torch.is_tensor(v) and
                              v.dim() > 0 and v.shape[0] == rgb.shape[0] else v for v in style)
                styled = pert._clamp(pert.render(ctx, style))
            self._cache[key] = normalize(styled, **norm)
        return self._cache[key]

    def loss(self, inputs, data_samples):
        """The loss closure: the segmentor's summed training losses.

        Args:
            inputs (Tensor): Normalised images.
            data_samples (list): Labels.

        Returns:
            Tensor: Scalar loss.
        """
        return seg_loss(self.model, inputs, data_samples)

    def _eval(self, grad=True):
        from npdg.analysis.inference_path import inference_mode
        return inference_mode(self.model, grad=grad)

    def _unit_params(self):
        names = unit_parameter_names(self.units or [])
        params = dict(self.model.named_parameters())
        missing = sorted(n for n in names if n not in params)
        if missing:
            raise KeyError(f'ScoringContext: unit parameters {missing[:3]} are not parameters '
                           'of the model (units built for another structure?).')
        return {n: params[n] for n in sorted(names)}

    # ----------------------------------------------------------- gradients
    def gradients(self, num_domains=0, beta=0.0):
        """Per batch, the gradient of the risk objective over pseudo-domains.

        The objective of a batch is ``J = mean_d R_d + beta * Var_d R_d``
        over domain 0 (clean) and ``num_domains`` fixed style draws, ``R_d``
        the loss on the batch in domain d. With ``num_domains=0`` it is the
        plain loss. Gradients are taken with ``torch.autograd.grad`` for the
        units' parameters only (``.grad`` is not touched).

        Args:
            num_domains (int): Style-drawn pseudo-domains besides the clean one.
            beta (float): Weight of the variance of the domain risks.

        Returns:
            tuple[dict, list[dict]]: The parameters by name and, per batch,
            ``{name: gradient}`` (detached, CPU).
        """
        key = ('grad', int(num_domains), float(beta))
        params = self._unit_params()
        if key not in self._cache:
            grads = []
            with self._eval():
                for b, (_, samples) in enumerate(self.processed()):
                    risks = [self.loss(self.domain_inputs(b, d), samples)
                             for d in range(int(num_domains) + 1)]
                    objective = _risk(risks, float(beta))
                    values = torch.autograd.grad(objective, list(params.values()),
                                                 allow_unused=True)
                    grads.append({n: (torch.zeros_like(p) if g is None else g).detach().cpu()
                                  for (n, p), g in zip(params.items(), values)})
            self._cache[key] = grads
        return params, self._cache[key]

    def squared_gradients(self):
        """Per parameter, the mean over samples of the squared per-sample gradient.

        ``E[g^2]`` is the diagonal of the empirical Fisher, the usual
        estimate of the Hessian's diagonal near a minimum. Every image of
        every batch is one backward pass (eval mode: samples independent).

        Returns:
            tuple[dict, dict]: The parameters by name and ``{name: E[g^2]}``
            (CPU).
        """
        params = self._unit_params()
        if 'grad_sq' not in self._cache:
            total, count = {n: torch.zeros_like(p, device='cpu', dtype=torch.float64)
                            for n, p in params.items()}, 0
            with self._eval():
                for inputs, samples in self.processed():
                    for i in range(inputs.shape[0]):
                        loss = self.loss(inputs[i:i + 1], samples[i:i + 1])
                        values = torch.autograd.grad(loss, list(params.values()),
                                                     allow_unused=True)
                        for n, g in zip(params, values):
                            if g is not None:
                                total[n] += g.detach().double().cpu() ** 2
                        count += 1
            self._cache['grad_sq'] = {n: v / max(1, count) for n, v in total.items()}
        return params, self._cache['grad_sq']

    # ----------------------------------------------------------- activations
    def mean_maps(self, domain='styled', size=None):
        """Dataset-mean feature map of every channel of every observed layer.

        Observed layers: affine BNs (their output, the channel's feature map)
        and multi-head attention modules (each head's per-token output norm
        before its gate). Maps are resized (area) to ``size`` before
        averaging so images of any size can be pooled; the default is the
        first batch's map size of each layer.

        Args:
            domain (str): ``'clean'`` (source), ``'styled'`` (source in the
                pseudo-domains 1..3, pooled) or ``'target'`` (real target
                images: an oracle option).
            size (tuple, optional): Common (h, w) per layer; see above.

        Returns:
            dict[str, Tensor]: ``{layer name: (C, h, w)}`` float64 means.
        """
        key = ('maps', domain, size)
        if key in self._cache:
            return self._cache[key]
        from npdg.pruning.units import unit_layers
        from npdg.statistics.observer import ActivationObserver
        sums, counts, sizes = {}, {}, {}

        def add(name, maps):
            maps = maps.detach().double()
            target = size or sizes.setdefault(name, tuple(maps.shape[-2:]))
            if tuple(maps.shape[-2:]) != tuple(target):
                maps = F.adaptive_avg_pool2d(maps, target)
            sums[name] = sums.get(name, 0) + maps.sum(0)
            counts[name] = counts.get(name, 0) + maps.shape[0]

        def on_channels(name, module, x, out):
            if out.dim() == 4:  # the BN's output: the channel's feature map
                add(name, out)

        def on_heads(name, module, heads):
            h, w = module.last_hw
            norms = heads.norm(dim=-1)  # (B, heads, L)
            add(name, norms.reshape(norms.shape[0], norms.shape[1], h, w))

        with ActivationObserver(unit_layers(self.model), on_channels, on_heads), \
                self._eval(grad=False):
            if domain == 'target':
                for inputs, _ in self.processed('target'):
                    self.model._forward(inputs)
            else:
                domains = [0] if domain == 'clean' else [1, 2, 3]
                for b in range(len(self.processed())):
                    for d in domains:
                        self.model._forward(self.domain_inputs(b, d))
        self._cache[key] = {n: sums[n] / counts[n] for n in sums}
        return self._cache[key]
