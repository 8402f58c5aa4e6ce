"""Keep what a removed constant channel added: fold it into the next layer.

A channel whose BN scale is exactly 0 (sparse training drives scales there)
still emits a constant, ``act(beta)``. Removing it drops that constant from
every layer that reads the channel. Network-slimming implementations fold it
into the consumer instead, and so does npdg: for every consumer conv
(``groups == 1``) of a removed channel, one probe forward measures the
channel's input to that conv; where it is constant over all positions, the
conv's response to it, ``sum_k W[:, c, k] * value``, is added to the conv's
bias, or, for a conv without bias followed by a BN, subtracted from that BN's
running mean (in training mode the batch mean absorbs it by itself). A
channel that is not constant at the consumer (e.g. a residual stream, where
the identity path adds a varying input) is not folded.

The fold is exact wherever the conv's window lies inside the feature map; at
the border, zero padding hides part of the constant, as it does for any
constant input.
"""
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from npdg.analysis.inference_path import unwrap_model

#: A channel counts as constant when its range is below this (relative to its size).
CONSTANT_TOL = 1e-6


def _following_bn(graph, conv):
    """The BN that reads ``conv``'s output directly, if any."""
    node = graph.module2node.get(conv)
    if node is None:
        return None
    bns = [n.module for n in node.outputs if isinstance(n.module, _BatchNorm)]
    return bns[0] if len(bns) == 1 and len(node.outputs) == 1 else None


def consumers_of(graph, units, chosen, zero_scales):
    """Consumer convs of removed channels whose scales are all 0.

    Args:
        graph: torch-pruning dependency graph.
        units (list): The units.
        chosen (list[list[int]]): Removed unit indices per layer.
        zero_scales (list[Tensor | None]): Per layer, which units have every
            scale at 0 (:func:`npdg.pruning.pruner.zero_scale_units`).

    Returns:
        list[tuple[nn.Conv2d, list[int]]]: ``(conv, input channel indices)``.
    """
    out = []
    for u, idxs, zero in zip(units, chosen, zero_scales):
        if u.kind != 'channel' or zero is None or not idxs:
            continue
        dead = [i for i in idxs if bool(zero[i])]
        if not dead:
            continue
        pruner = graph.get_pruner_of_module(u.root)
        group = graph.get_pruning_group(u.root, pruner.prune_out_channels, dead)
        for dep, dep_idxs in group:
            module = dep.target.module
            if dep.handler.__name__ == 'prune_in_channels' and isinstance(module, nn.Conv2d) \
                    and module.groups == 1:
                out.append((module, [int(i) for i in dep_idxs]))
    return out


def _probe_inputs(segmentor, convs, input_shape):
    """Per-channel min and max of each conv's input over one random eval batch."""
    seen, handles = {}, []

    def observe(module, args, output):
        x = args[0].detach().double()
        lo, hi = x.amin(dim=(0, 2, 3)), x.amax(dim=(0, 2, 3))
        if id(module) in seen:
            lo = torch.minimum(lo, seen[id(module)][0])
            hi = torch.maximum(hi, seen[id(module)][1])
        seen[id(module)] = (lo, hi)

    for conv in {id(c): c for c in convs}.values():
        handles.append(conv.register_forward_hook(observe))
    modes = {m: m.training for m in segmentor.modules()}
    gen = torch.Generator().manual_seed(0)
    try:
        segmentor.eval()
        with torch.no_grad():
            segmentor._forward(torch.randn(2, *input_shape, generator=gen))
    finally:
        for m, mode in modes.items():
            m.training = mode
        for h in handles:
            h.remove()
    return seen


@torch.no_grad()
def fold_constant_channels(segmentor, graph, units, chosen, zero_scales, input_shape):
    """Fold removed constant channels into their consumers (before the prune).

    Args:
        segmentor (nn.Module): Bare segmentor, not yet pruned.
        graph: Its dependency graph.
        units (list): Its units.
        chosen (list[list[int]]): Unit indices about to be removed, per layer.
        zero_scales (list[Tensor | None]): Units with every scale at 0, per layer.
        input_shape (tuple): (C, H, W) of the probe input.

    Returns:
        dict: ``folded`` (consumer input channels folded), ``skipped``
        (consumer input channels that were not constant or had nowhere to
        go).
    """
    pairs = consumers_of(graph, units, chosen, zero_scales)
    report = dict(folded=0, skipped=0)
    if not pairs:
        return report
    segmentor = unwrap_model(segmentor)
    ranges = _probe_inputs(segmentor, [c for c, _ in pairs], tuple(input_shape))
    for conv, idxs in pairs:
        if id(conv) not in ranges:  # not on the inference path (auxiliary head)
            report['skipped'] += len(idxs)
            continue
        lo, hi = (v[idxs] for v in ranges[id(conv)])
        const = (hi - lo) <= CONSTANT_TOL * (1 + hi.abs())
        target_bias = conv.bias
        bn = None if target_bias is not None else _following_bn(graph, conv)
        if target_bias is None and bn is None:
            report['skipped'] += len(idxs)
            continue
        keep = [i for i, c in zip(idxs, const.tolist()) if c]
        report['skipped'] += len(idxs) - len(keep)
        if not keep:
            continue
        value = lo[const].to(conv.weight.dtype)
        shift = (conv.weight[:, keep].sum(dim=(2, 3)) * value).sum(dim=1)
        if target_bias is not None:
            target_bias.add_(shift)
        else:
            bn.running_mean.sub_(shift.to(bn.running_mean.dtype))
        report['folded'] += len(keep)
    return report
