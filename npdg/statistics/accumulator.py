"""Streaming sums of one layer's activations for the NPDG sensitivity."""
from collections import OrderedDict
from typing import Dict, Union

import torch

from .moments import binary_from_correlation, correlation_from_sums, unary_from_sums

Device = Union[str, torch.device, None]

# Names of the sums, in the fixed order used by state_dict and all-reduce.
SUM_KEYS = ('count', 'sum', 'cross', 'var_sum', 'var_count')


class SensitivityAccumulator:
    """Streaming sums for the unary and binary scores of one layer.

    Keeps only float64 sums, so memory does not depend on the number of
    updates: ``count`` (samples), ``sum`` (``C``), ``cross`` (``C x C``
    outer products) for the correlation, and ``var_sum`` (``C``) /
    ``var_count`` for the across-style variance. Counts are float64 tensors
    too (exact up to 2**53) so every sum can be all-reduced in one call.
    The covariance is formed from raw sums (``E[xx^T] - E[x]E[x]^T``) in
    float64, which is accurate for activations whose mean is not many orders
    of magnitude above their spread (normalised activations are ideal).

    Args:
        num_units (int): ``C``, units (channels or heads) of the layer.
        device (str | torch.device, optional): Where the sums live. ``None``
            follows the input: the sums move to the device of the tensor
            given to :meth:`update`.
    """

    def __init__(self, num_units: int, device: Device = None):
        if int(num_units) < 1:
            raise ValueError(
                f'SensitivityAccumulator: num_units must be >= 1, got '
                f'{num_units}.')
        self.num_units = int(num_units)
        self._fixed_device = device is not None
        self._sums = self._zeros(
            torch.device('cpu' if device is None else device))

    def _zeros(self, device: torch.device) -> Dict[str, torch.Tensor]:
        """Fresh zero sums.

        Args:
            device (torch.device): Device of the sums.

        Returns:
            dict: ``SUM_KEYS`` -> float64 zero tensors.
        """
        c = self.num_units
        shapes = dict(count=(), sum=(c,), cross=(c, c), var_sum=(c,),
                      var_count=())
        return OrderedDict((k, torch.zeros(shapes[k], dtype=torch.float64,
                                           device=device)) for k in SUM_KEYS)

    @property
    def device(self) -> torch.device:
        """torch.device: Device of the sums."""
        return self._sums['count'].device

    @property
    def num_samples(self) -> int:
        """int: Samples (image x style x position) seen by the binary score."""
        return int(self._sums['count'])

    @property
    def num_positions(self) -> int:
        """int: (image, position) pairs seen by the unary score."""
        return int(self._sums['var_count'])

    def sums(self) -> Dict[str, torch.Tensor]:
        """The live sum tensors, in ``SUM_KEYS`` order.

        Returns:
            OrderedDict: Name -> tensor. These are the accumulator's own
            tensors; in-place changes (e.g. all-reduce) change the state.
        """
        return self._sums

    def to(self, device: Device) -> 'SensitivityAccumulator':
        """Move the sums to ``device``.

        Args:
            device (str | torch.device): Target device.

        Returns:
            SensitivityAccumulator: ``self``.
        """
        self._sums = OrderedDict(
            (k, v.to(device)) for k, v in self._sums.items())
        return self

    def reset(self) -> None:
        """Zero every sum (keeps the device)."""
        for value in self._sums.values():
            value.zero_()

    def decay_(self, factor: float) -> None:
        """Multiply every sum by ``factor`` (an exponentially weighted estimate).

        Every score is a ratio of sums (means, variances, correlations), so
        scaling all of them by the same factor keeps the current scores and
        gives the samples seen so far weight ``factor`` against new ones.
        ``factor = 0`` is :meth:`reset`, ``factor = 1`` keeps everything
        (a cumulative estimate).

        Args:
            factor (float): In [0, 1].
        """
        if not 0.0 <= float(factor) <= 1.0:
            raise ValueError(f'SensitivityAccumulator.decay_: factor must be in [0, 1], '
                             f'got {factor!r}.')
        for value in self._sums.values():
            value.mul_(float(factor))

    def _check_input(self, x: torch.Tensor) -> None:
        """Validate an update tensor.

        Args:
            x (torch.Tensor): Candidate ``(B, K, C, N)`` tensor.

        Raises:
            ValueError: On a wrong shape, fewer than 2 styles, or
                non-finite values.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
            raise ValueError(
                f'SensitivityAccumulator.update expects a (B, K, C, N) tensor '
                f'(images, styles, units, positions), got {shape}; use '
                f'npdg.statistics.subsample_positions to build it.')
        b, k, c, n = x.shape
        if c != self.num_units:
            raise ValueError(
                f'SensitivityAccumulator.update: got {c} units in dim 2, the '
                f'accumulator was built for {self.num_units}.')
        if k < 2:
            raise ValueError(
                f'SensitivityAccumulator.update needs K >= 2 styles per image '
                f'for the across-style variance, got K={k}.')
        if b < 1 or n < 1:
            raise ValueError(
                f'SensitivityAccumulator.update got an empty tensor of shape '
                f'{tuple(x.shape)}.')
        if not bool(torch.isfinite(x).all()):
            raise ValueError(
                'SensitivityAccumulator.update got NaN/Inf activations; check '
                'the model (or mixed-precision overflow) before scoring.')

    def update(self, x: torch.Tensor) -> None:
        """Add a batch of ``B`` images x ``K`` styles to the sums.

        Args:
            x (torch.Tensor): ``(B, K, C, N)`` activations (any float dtype;
                detached and promoted to float64).
        """
        self._check_input(x)
        if not self._fixed_device and x.device != self.device:
            self.to(x.device)
        x = x.detach().to(device=self.device, dtype=torch.float64)
        b, k, c, n = x.shape
        samples = x.permute(2, 0, 1, 3).reshape(c, -1)
        s = self._sums
        s['count'] += samples.shape[1]
        s['sum'] += samples.sum(dim=1)
        s['cross'].addmm_(samples, samples.T)
        s['var_sum'] += x.var(dim=1, correction=0).sum(dim=(0, 2))
        s['var_count'] += b * n

    def unary(self) -> torch.Tensor:
        """Unary scores ``U`` (mean across-style population variance).

        Returns:
            torch.Tensor: ``(C,)`` float64.
        """
        return unary_from_sums(self._sums['var_sum'], self._sums['var_count'])

    def correlation(self) -> torch.Tensor:
        """Correlation matrix of the units over all samples.

        Returns:
            torch.Tensor: ``(C, C)`` float64; zero rows/columns for units
            with zero variance.
        """
        s = self._sums
        return correlation_from_sums(s['count'], s['sum'], s['cross'])

    def binary(self) -> torch.Tensor:
        """Binary scores ``B`` (mean |corr| with the other units).

        Returns:
            torch.Tensor: ``(C,)`` float64.
        """
        return binary_from_correlation(self.correlation())

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """Copies of the sums, for checkpoints (tensors only).

        Returns:
            dict: ``SUM_KEYS`` -> CPU float64 tensors.
        """
        return {k: v.detach().cpu().clone() for k, v in self._sums.items()}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore sums saved by :meth:`state_dict`.

        Args:
            state (dict): ``SUM_KEYS`` -> tensors of this layer's shapes.

        Raises:
            KeyError: If a sum is missing.
            ValueError: If a shape does not match ``num_units`` (nothing is
                changed then).
        """
        missing = [k for k in SUM_KEYS if k not in state]
        if missing:
            raise KeyError(
                f'SensitivityAccumulator.load_state_dict: missing {missing}; '
                f'expected keys {list(SUM_KEYS)} from state_dict().')
        values = {k: torch.as_tensor(state[k]) for k in SUM_KEYS}
        for key, current in self._sums.items():
            if values[key].shape != current.shape:
                raise ValueError(
                    f'SensitivityAccumulator.load_state_dict: {key!r} has '
                    f'shape {tuple(values[key].shape)}, expected '
                    f'{tuple(current.shape)} for {self.num_units} units.')
        for key, current in self._sums.items():
            current.copy_(values[key].to(dtype=torch.float64))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_units={self.num_units}, '
                f'num_samples={self.num_samples}, device={self.device})')
