"""The data a prune step scores on: fixed source batches and their pseudo-domains.

:class:`ScoringBatches` draws the batches from the training set with their own
seed (the training RNG streams are saved and restored); :class:`ScoringData`
holds them, runs them through the segmentor's data preprocessor once, and
renders each batch in fixed pseudo-domains (one style per domain, drawn from
the seed). Nothing here runs the segmentor: the passes over this data are the
functions of :mod:`npdg.importance.passes`.
"""
import random

import numpy as np
import torch


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


class ScoringData:
    """Source (and, for oracle options, target) batches and their pseudo-domains.

    Args:
        preprocessor (nn.Module): The segmentor's data preprocessor.
        batches (list[dict] | Callable, optional): Clean raw batches, or a
            callable returning them (drawn on first use).
        target_batches (list[dict] | Callable, optional): Unlabelled images of
            a real target domain (criteria's explicitly named oracle options).
        perturbation (nn.Module, optional): Image-level style perturbation that
            renders the pseudo-domains (``AdvStyle`` when None).
        seed (int): Seed of the pseudo-domains' style draws.
    """

    def __init__(self, preprocessor, batches=None, target_batches=None, perturbation=None,
                 seed=0):
        self.preprocessor = preprocessor
        self._raw = dict(source=batches, target=target_batches)
        self._perturbation = perturbation
        self.seed = int(seed)
        self._processed, self._domains = {}, {}

    def batches(self, which='source'):
        """The raw batches (drawn once).

        Args:
            which (str): ``'source'`` or ``'target'`` (oracle).

        Returns:
            list[dict]: Raw batches.

        Raises:
            RuntimeError: When there are none (names what to configure).
        """
        value = self._raw[which]
        if callable(value):
            value = self._raw[which] = value()
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

    def processed(self, which='source'):
        """Batches through the data preprocessor (once): ``[(inputs, data_samples)]``.

        Args:
            which (str): ``'source'`` or ``'target'``.

        Returns:
            list[tuple[Tensor, list]]: Normalised inputs and data samples.
        """
        if which not in self._processed:
            out = []
            with torch.no_grad():
                for batch in self.batches(which):
                    data = self.preprocessor(dict(inputs=list(batch['inputs']),
                                                  data_samples=list(batch['data_samples'])),
                                             True)
                    out.append((data['inputs'], data['data_samples']))
            self._processed[which] = out
        return self._processed[which]

    def domain_inputs(self, batch_index, domain):
        """Normalised inputs of one source batch in one pseudo-domain (cached).

        Domain 0 is the clean images; domain ``d >= 1`` is every image of the
        batch rendered in one style drawn from ``seed`` and ``d`` (the same
        style for all images and batches: a consistent pseudo-domain).

        Args:
            batch_index (int): Index into :meth:`processed`.
            domain (int): Pseudo-domain.

        Returns:
            Tensor: (B, 3, H, W) normalised images.
        """
        inputs, _ = self.processed()[batch_index]
        if domain == 0:
            return inputs
        key = (batch_index, domain)
        if key not in self._domains:
            from npdg.perturbation import denormalize, normalize
            from npdg.perturbation.base import norm_args_from_preprocessor
            norm = norm_args_from_preprocessor(self.preprocessor)
            with torch.no_grad():
                rgb = denormalize(inputs, **norm).clamp(0, 255)
                gen = torch.Generator().manual_seed(self.seed * 1000003 + 7919 * domain)
                styled = self.perturbation.sample_domain(rgb, gen)
            self._domains[key] = normalize(styled, **norm)
        return self._domains[key]
