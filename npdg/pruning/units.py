"""Prunable units of a segmentor: coupled channel groups and attention heads.

Three kinds, as the pruning hooks' ``unit_types`` name them:

* ``'channel'``: a coupled group of conv/linear output channels with at
  least one BN (the BN scale is NPDG's gamma);
* ``'head'``: one attention head of a multi-head per-head attention module;
* ``'width'``: a coupled group *without* BN (grouped global pruning of
  transformers, Riaz & Smeaton 2025): Mix-FFN hidden channels (fc1, the
  depthwise conv, fc2's inputs), a stage's embedding width (patch embedding,
  every LayerNorm, q/k/v inputs, attention and FFN outputs, the decode
  head's inputs), the key/value reduction width of efficient attention.
  The per-head q/k/v widths are not width units (heads go whole). In mmseg's
  ViT (packed ``nn.MultiheadAttention``) the FFN hidden channels are width
  units; its embedding width (tied to the heads and position embeddings) is not.
"""
from dataclasses import dataclass, field
from typing import List, Tuple

import torch
import torch.nn as nn

from npdg.models.per_head_attention import PerHeadEfficientAttention

from .graph import build_dependency_graph, classifier_layers

BN_TYPES = (nn.modules.batchnorm._BatchNorm,)
UNIT_TYPES = ('channel', 'head', 'width')


def check_unit_types(unit_types, owner):
    """A hook's ``unit_types`` as a list, checked against :data:`UNIT_TYPES`.

    Args:
        unit_types (str | Sequence[str]): One kind or several.
        owner (str): The hook's name, for the error.

    Returns:
        list[str]: The kinds.

    Raises:
        ValueError: For an unknown kind or none.
    """
    unit_types = [unit_types] if isinstance(unit_types, str) else list(unit_types)
    unknown = sorted(set(unit_types) - set(UNIT_TYPES))
    if unknown or not unit_types:
        raise ValueError(f'{owner}: unknown unit type(s) {unknown or unit_types!r}; '
                         f'choose from {UNIT_TYPES}.')
    return unit_types


# -- the one definition of what carries units -------------------------------------
def is_channel_layer(module):
    """An affine BN: its channels are units (within their coupled group)."""
    return isinstance(module, BN_TYPES) and module.affine


def is_head_layer(module):
    """A per-head attention module with more than one head: its heads are units."""
    return isinstance(module, PerHeadEfficientAttention) and module.num_heads > 1


def unit_layers(model):
    """Every layer that carries units, by name: affine BNs and multi-head attention.

    The per-layer view of the units, used by everything that observes or
    scales them (statistics, sparse training, feature maps for scoring).
    :func:`collect_units` groups the BN channels into coupled groups.

    Args:
        model (nn.Module): Bare segmentor.

    Returns:
        dict[str, nn.Module]: name -> module, in module order.
    """
    return {name: m for name, m in model.named_modules()
            if is_channel_layer(m) or is_head_layer(m)}


def unit_scales(model):
    """The learnable scale (gamma) of every unit layer: BN weights, head gates.

    Frozen BN weights and attention without a gate have no trainable scale
    and are left out.

    Args:
        model (nn.Module): Bare segmentor.

    Returns:
        dict[str, nn.Parameter]: layer name -> scale parameter.
    """
    scales = {}
    for name, m in unit_layers(model).items():
        if is_channel_layer(m) and m.weight.requires_grad:
            scales[name] = m.weight
        elif is_head_layer(m) and m.head_gate is not None:
            scales[name] = m.head_gate
    return scales


def _plain(idxs):
    return [int(getattr(i, 'idx', i)) for i in idxs]


@dataclass
class ChannelUnits:
    """One group of coupled output channels (a unit = one root channel).

    Removing unit ``j`` removes the root layer's output channel ``j`` and
    every channel coupled to it (BN, residual partners, concat inputs, the
    next layers' inputs).

    Attributes:
        name (str): Name of the root layer in the segmentor.
        root (nn.Module): The root conv/linear layer.
        group: The torch-pruning group (all channels).
        num_units (int): Channels of the root layer.
        bns (list): ``(name, bn, channel_idxs, root_idxs)`` of every BN in
            the group: BN channel ``channel_idxs[k]`` belongs to unit
            ``root_idxs[k]``.
        convs (list): ``(name, layer, channel_idxs, root_idxs)`` of every
            conv/linear whose *output* channels are in the group.
        kind (str): ``'channel'`` (the group has a BN) or ``'width'`` (no BN).
        norms (list): ``(name, layer, channel_idxs, root_idxs)`` of every
            affine LayerNorm/GroupNorm in the group (its scale and shift go
            with the unit).
    """
    name: str
    root: nn.Module
    group: object
    num_units: int
    bns: List[Tuple] = field(default_factory=list)
    convs: List[Tuple] = field(default_factory=list)
    kind: str = 'channel'
    norms: List[Tuple] = field(default_factory=list)

    def members(self):
        """Root indices covered by each layer of the group.

        A group rooted at a concat consumer covers several producer layers;
        each of them must keep some channels.

        Returns:
            list[tuple[str, list[int]]]: ``(layer name, root indices)``.
        """
        return [(name, sorted(set(root_idxs))) for name, _, _, root_idxs in self.bns + self.convs]

    def gather(self, per_layer_values, layers='bns', reduction='mean'):
        """Average per-layer channel values into per-unit values.

        Args:
            per_layer_values (Callable[[str, nn.Module], Tensor] | None):
                Gives a channel vector for a layer of the group (by name and
                module), or ``None`` to skip that layer.
            layers (str): ``'bns'`` (the group's BNs) or ``'convs'`` (the
                conv/linear layers whose output channels are in the group).
            reduction (str): ``'mean'`` or ``'max'`` over those layers.

        Returns:
            Tensor: (num_units,) float64 reduced over those layers (units no
            layer covers get 0).
        """
        if reduction not in ('mean', 'max'):
            raise ValueError(f"reduction must be 'mean' or 'max', got {reduction!r}.")
        fill = float('-inf') if reduction == 'max' else 0.0
        total = torch.full((self.num_units,), fill, dtype=torch.float64)
        count = torch.zeros(self.num_units, dtype=torch.float64)
        for name, bn, idxs, root_idxs in getattr(self, layers):
            values = per_layer_values(name, bn)
            if values is None:
                continue
            values = values.detach().double().cpu()[idxs]
            if reduction == 'max':
                total.scatter_reduce_(0, torch.tensor(root_idxs), values, 'amax',
                                      include_self=True)
                count.index_add_(0, torch.tensor(root_idxs),
                                 torch.ones(len(idxs), dtype=torch.float64))
                continue
            total.index_add_(0, torch.tensor(root_idxs), values)
            count.index_add_(0, torch.tensor(root_idxs), torch.ones(len(idxs), dtype=torch.float64))
        if reduction == 'max':
            return torch.where(count > 0, total, torch.zeros_like(total))
        return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


@dataclass
class HeadUnits:
    """The heads of one multi-head attention module (a unit = one head).

    Attributes:
        name (str): Module name in the segmentor.
        module (PerHeadEfficientAttention): The attention module.
        num_units (int): Its number of heads.
    """
    name: str
    module: PerHeadEfficientAttention
    num_units: int
    kind: str = 'head'

    def members(self):
        """The module's heads form one layer.

        Returns:
            list[tuple[str, list[int]]]: One entry covering every head.
        """
        return [(self.name, list(range(self.num_units)))]


AUX_PREFIX = 'auxiliary_head.'


def _module_names(segmentor):
    return {m: n for n, m in segmentor.named_modules()}


def _head_internal_layers(segmentor):
    """q/k/v of every per-head attention module: their widths are the heads'."""
    return {id(getattr(m, n)) for m in segmentor.modules()
            if isinstance(m, PerHeadEfficientAttention) for n in ('q', 'k', 'v')}


NORM_TYPES = (nn.LayerNorm, nn.GroupNorm)


def channel_units(segmentor, graph, with_bn=True, without_bn=False):
    """Coupled channel groups: with a BN (``'channel'``) and/or without (``'width'``).

    Groups without BN are NPDG's non-units (no scale to rank) but grouped
    global pruning's width units. Groups whose members all sit in the
    auxiliary head are never units (training-only: no inference FLOPs to
    save); auxiliary-head layers coupled to a backbone group are still
    pruned with it. Groups of the per-head q/k/v widths are never units, nor
    groups through a packed ``nn.MultiheadAttention`` (mmseg's ViT: the
    embedding width, coupled to its heads and position embeddings; the
    ViT's units are its FFN hidden channels and the head's channels).

    Args:
        segmentor (nn.Module): Bare segmentor.
        graph (tp.DependencyGraph): Its dependency graph.
        with_bn (bool): Include groups with a BN (kind ``'channel'``).
        without_bn (bool): Include groups without BN (kind ``'width'``).

    Returns:
        list[ChannelUnits]: One entry per group, in graph order.
    """
    names = _module_names(segmentor)
    ignored = classifier_layers(segmentor)
    head_internal = _head_internal_layers(segmentor)
    units = []
    for group in graph.get_all_groups(ignored_layers=ignored,
                                      root_module_types=(nn.Conv2d, nn.Linear)):
        root_dep = group[0].dep
        root = root_dep.target.module
        entry = ChannelUnits(name=names.get(root, str(root)), root=root, group=group,
                             num_units=graph.get_pruner_of_module(root).get_out_channels(root))
        seen, internal = set(), False
        for i, (dep, idxs) in enumerate(group):
            layer = dep.target.module
            # packed attention (mmseg's ViT): its width must stay a multiple of its heads
            # and the position embeddings would not follow, so groups through it stay
            internal |= isinstance(layer, nn.MultiheadAttention)
            if not graph.is_out_channel_pruning_fn(dep.handler) or (id(layer), 'o') in seen:
                continue
            seen.add((id(layer), 'o'))
            internal |= id(layer) in head_internal
            item = (names.get(layer, str(layer)), layer, _plain(idxs),
                    [int(r) for r in group[i].root_idxs])
            if is_channel_layer(layer):
                entry.bns.append(item)
            elif isinstance(layer, (nn.Conv2d, nn.Linear)):
                entry.convs.append(item)
            elif isinstance(layer, NORM_TYPES) and getattr(layer, 'weight', None) is not None:
                entry.norms.append(item)
        layers = entry.bns + entry.convs
        # Channels of the auxiliary head only (its own convs) are not units:
        # the head is dropped at inference, so removing them saves no FLOPs.
        if internal or not layers or all(n.startswith(AUX_PREFIX) for n, *_ in layers):
            continue
        if entry.bns and with_bn:
            units.append(entry)
        elif not entry.bns and without_bn:
            entry.kind = 'width'
            units.append(entry)
    return units


def head_units(segmentor):
    """Attention modules whose heads can be removed (more than one head).

    Args:
        segmentor (nn.Module): Bare segmentor.

    Returns:
        list[HeadUnits]: One entry per multi-head module.
    """
    return [HeadUnits(name=n, module=m, num_units=m.num_heads)
            for n, m in segmentor.named_modules() if is_head_layer(m)]


def collect_units(segmentor, input_shape=(3, 64, 64), channels=True, heads=True,
                  widths=False):
    """All units of a segmentor.

    Args:
        segmentor (nn.Module): Bare segmentor.
        input_shape (tuple): Example input (C, H, W) for tracing.
        channels (bool): Include channel groups with a BN.
        heads (bool): Include attention heads.
        widths (bool): Include channel groups without BN (FFN hidden
            channels, embedding widths).

    Returns:
        tuple: ``(graph, units)``; ``graph`` is None when not traced.
    """
    traced = channels or widths
    graph = build_dependency_graph(segmentor, input_shape) if traced else None
    units = channel_units(segmentor, graph, channels, widths) if traced else []
    if heads:
        units += head_units(segmentor)
    return graph, units
