"""Sum the accumulators' sums across ranks so every rank scores the same."""
import zlib
from collections import OrderedDict
from typing import List, Mapping, Sequence, Tuple, Union

import torch
import torch.distributed as dist

from .accumulator import SensitivityAccumulator

Accumulators = Union[Mapping[str, SensitivityAccumulator],
                     Sequence[SensitivityAccumulator]]


def is_distributed(group=None) -> bool:
    """Whether a default process group with more than one rank exists.

    Args:
        group (ProcessGroup, optional): Group to check; the default one when
            ``None``.

    Returns:
        bool: True when an all-reduce would combine several ranks.
    """
    return (dist.is_available() and dist.is_initialized()
            and dist.get_world_size(group) > 1)


def _ordered(accumulators: Accumulators
             ) -> List[Tuple[str, SensitivityAccumulator]]:
    """List ``(label, accumulator)`` pairs in a rank-independent order.

    Args:
        accumulators (Mapping | Sequence): Accumulators, keyed by layer name
            (sorted by name) or in a list (kept in order).

    Returns:
        list: ``(label, accumulator)`` pairs.
    """
    if isinstance(accumulators, SensitivityAccumulator):
        return [('0', accumulators)]
    if isinstance(accumulators, Mapping):
        return [(str(k), accumulators[k]) for k in sorted(accumulators)]
    return [(str(i), acc) for i, acc in enumerate(accumulators)]


def _comm_device(first: torch.Tensor, group=None) -> torch.device:
    """Device the flattened buffers travel on for the group's backend.

    Args:
        first (torch.Tensor): A sum tensor (its device is the default).
        group (ProcessGroup, optional): The group.

    Returns:
        torch.device: CUDA for NCCL (which cannot reduce CPU tensors),
        otherwise ``first``'s device.
    """
    backend = str(dist.get_backend(group)).lower()
    if 'nccl' in backend and first.device.type != 'cuda':
        return torch.device('cuda', torch.cuda.current_device())
    return first.device


def _check_same_layout(pairs, device: torch.device, group=None) -> None:
    """Fail on every rank alike if the ranks hold different accumulators.

    Reduces ``[n, h, -n, -h]`` with MAX (``n``: number of sum elements,
    ``h``: CRC32 of the labels and unit counts); equal layouts give
    ``max == min``. Checked before the real all-reduce, which would hang or
    mix unrelated sums on a mismatch.

    Args:
        pairs (list): ``(label, accumulator)`` pairs.
        device (torch.device): Communication device.
        group (ProcessGroup, optional): The group.

    Raises:
        RuntimeError: If any two ranks differ.
    """
    layout = ';'.join(f'{label}:{acc.num_units}' for label, acc in pairs)
    numel = sum(t.numel() for _, acc in pairs for t in acc.sums().values())
    crc = float(zlib.crc32(layout.encode()))
    probe = torch.tensor([numel, crc, -numel, -crc], dtype=torch.float64,
                         device=device)
    dist.all_reduce(probe, op=dist.ReduceOp.MAX, group=group)
    if probe[0] != -probe[2] or probe[1] != -probe[3]:
        raise RuntimeError(
            'npdg.statistics.all_reduce_: ranks hold different accumulators '
            f'(this rank: {len(pairs)} layers, {numel} sum elements). Create '
            'the same layers on every rank (e.g. SensitivityStatistics.add) '
            'before reducing.')


def _group_by_dtype(pairs) -> 'OrderedDict[torch.dtype, List[torch.Tensor]]':
    """Collect every sum tensor, grouped by dtype in a fixed order.

    Args:
        pairs (list): ``(label, accumulator)`` pairs.

    Returns:
        OrderedDict: dtype -> list of the accumulators' live tensors.
    """
    groups = OrderedDict()
    for _, acc in pairs:
        for tensor in acc.sums().values():
            groups.setdefault(tensor.dtype, []).append(tensor)
    return groups


def _reduce_flat(tensors: List[torch.Tensor], device: torch.device,
                 group=None) -> None:
    """All-reduce (sum) tensors in place through one flat buffer.

    Args:
        tensors (list): Tensors of one dtype.
        device (torch.device): Communication device.
        group (ProcessGroup, optional): The group.
    """
    flat = torch.cat([t.reshape(-1).to(device) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
    offset = 0
    for tensor in tensors:
        size = tensor.numel()
        tensor.copy_(flat[offset:offset + size].view_as(tensor))
        offset += size


def all_reduce_(accumulators: Accumulators, group=None) -> Accumulators:
    """Sum every accumulator's sums across ranks, in place.

    A no-op unless ``torch.distributed`` is initialised with more than one
    rank. Otherwise one ``all_reduce`` per dtype (all sums are float64, so
    one call) plus one small layout check. Afterwards every rank holds the
    global sums and computes identical scores. Must be called on every rank
    with the same layers (an empty set on one rank is detected too).

    Args:
        accumulators (Mapping | Sequence | SensitivityAccumulator): The
            accumulators; a mapping is reduced in sorted-key order.
        group (ProcessGroup, optional): Process group; default group when
            ``None``.

    Returns:
        The same ``accumulators`` object.
    """
    if not is_distributed(group):
        return accumulators
    pairs = _ordered(accumulators)
    groups = _group_by_dtype(pairs)
    first = (next(iter(groups.values()))[0] if groups else torch.zeros(()))
    device = _comm_device(first, group)
    _check_same_layout(pairs, device, group)
    for tensors in groups.values():
        _reduce_flat(tensors, device, group)
    return accumulators
