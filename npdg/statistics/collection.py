"""Sensitivity accumulators of many layers, keyed by layer name."""
from collections import OrderedDict
from typing import Dict, Iterator

import torch

from .accumulator import SensitivityAccumulator
from .distributed import all_reduce_
from .sensitivity import DEFAULT_LAMBDA, check_lambda, sensitivity_scores
from .sparsity import sparsity_weights


class SensitivityStatistics:
    """A :class:`SensitivityAccumulator` per layer, with scoring and sync.

    Layers are created on first :meth:`update` (units = ``x.shape[2]``) or
    up front with :meth:`add`; in distributed runs every rank must hold the
    same layers before :meth:`all_reduce_` (adding them up front guarantees
    it even for a rank that saw no batch of some layer).

    Args:
        device (str | torch.device, optional): Device of all sums; ``None``
            follows each layer's input.
    """

    def __init__(self, device=None):
        self.device = device
        self._layers: 'OrderedDict[str, SensitivityAccumulator]' = \
            OrderedDict()

    def add(self, name: str, num_units: int) -> SensitivityAccumulator:
        """Create (or return) the accumulator of a layer.

        Args:
            name (str): Layer name (e.g. the module path).
            num_units (int): Units of the layer.

        Returns:
            SensitivityAccumulator: The layer's accumulator.

        Raises:
            ValueError: If the layer exists with another unit count.
        """
        acc = self._layers.get(name)
        if acc is None:
            acc = SensitivityAccumulator(num_units, device=self.device)
            self._layers[name] = acc
        elif acc.num_units != int(num_units):
            raise ValueError(
                f'SensitivityStatistics: layer {name!r} has {acc.num_units} '
                f'units, got {num_units}; call reset()/remove() after pruning '
                f'changes a layer.')
        return acc

    def remove(self, name: str) -> None:
        """Drop a layer's accumulator (e.g. after the layer was pruned).

        Args:
            name (str): Layer name.
        """
        self._layers.pop(name, None)

    def update(self, name: str, x: torch.Tensor) -> None:
        """Add a ``(B, K, C, N)`` batch to a layer's sums.

        Args:
            name (str): Layer name.
            x (torch.Tensor): Activations, see
                :meth:`SensitivityAccumulator.update`.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(
                f'SensitivityStatistics.update({name!r}): expected a (B, K, '
                f'C, N) tensor, got '
                f'{tuple(x.shape) if isinstance(x, torch.Tensor) else x!r}.')
        self.add(name, x.shape[2]).update(x)

    def __getitem__(self, name: str) -> SensitivityAccumulator:
        return self._layers[name]

    def __contains__(self, name: str) -> bool:
        return name in self._layers

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    @property
    def names(self):
        """list[str]: Layer names in insertion order."""
        return list(self._layers)

    def scores(self, lam: float = DEFAULT_LAMBDA
               ) -> Dict[str, Dict[str, torch.Tensor]]:
        """Scores of every layer that has samples.

        Args:
            lam (float): Unary weight in [0, 1].

        Returns:
            dict: Layer name -> :func:`sensitivity_scores` dict. Layers
            without any update are left out.
        """
        lam = check_lambda(lam)
        return {name: sensitivity_scores(acc, lam)
                for name, acc in self._layers.items() if acc.num_samples > 0}

    def sparsity_weights(self, lam: float = DEFAULT_LAMBDA, eps: float = 0.1,
                         scope: str = 'global') -> Dict[str, torch.Tensor]:
        """Omega per layer from the current scores.

        Args:
            lam (float): Unary weight in [0, 1].
            eps (float): Offset of :func:`sparsity_weights`.
            scope (str): ``'global'`` or ``'layer'``.

        Returns:
            dict: Layer name -> ``(C,)`` omega.
        """
        w = {name: s['w'] for name, s in self.scores(lam).items()}
        return sparsity_weights(w, eps=eps, scope=scope)

    def all_reduce_(self, group=None) -> 'SensitivityStatistics':
        """Sum all layers' sums across ranks (no-op when not distributed).

        Args:
            group (ProcessGroup, optional): Process group.

        Returns:
            SensitivityStatistics: ``self``.
        """
        all_reduce_(self._layers, group=group)
        return self

    def reset(self) -> None:
        """Zero every layer's sums (keeps the layers)."""
        for acc in self._layers.values():
            acc.reset()

    def decay_(self, factor: float) -> None:
        """Scale every layer's sums by ``factor`` (see ``SensitivityAccumulator.decay_``).

        Args:
            factor (float): In [0, 1]; 0 resets, 1 keeps a cumulative estimate.
        """
        for acc in self._layers.values():
            acc.decay_(factor)

    def state_dict(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """Sums of every layer for checkpoints (tensors in plain dicts).

        Returns:
            dict: Layer name -> accumulator ``state_dict()``.
        """
        return {name: acc.state_dict() for name, acc in self._layers.items()}

    def load_state_dict(self, state: Dict[str, Dict[str, torch.Tensor]]
                        ) -> None:
        """Restore layers from :meth:`state_dict` (creating missing ones).

        Args:
            state (dict): Layer name -> sums.

        Raises:
            ValueError: If a layer's saved sums do not fit its unit count.
        """
        for name, sums in state.items():
            if 'sum' not in sums:
                raise KeyError(
                    f'SensitivityStatistics.load_state_dict: layer {name!r} '
                    f'has no "sum"; expected SensitivityStatistics.'
                    f'state_dict() output.')
            self.add(name, int(torch.as_tensor(sums['sum']).numel()))
            self._layers[name].load_state_dict(sums)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(layers={self.names})'
