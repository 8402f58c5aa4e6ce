"""What removing one unit saves: inference multiply-accumulates per unit.

Used by the FLOPs-aware ranking (``UnitPruner(flops_aware=True)``): a unit's
score is divided by its cost relative to the mean unit, so a cheap unit must
be much less important than an expensive one to go first. Costs come from
one inference forward at a given input size: every conv/linear records its
output size, and a channel unit's cost is the sum, over the layers of its
coupled group, of the multiply-accumulates that one output channel (or one
input channel) of that layer takes. A head's cost is its share of the
attention module's linear layers. Layers that the inference path does not
run (the auxiliary head) cost nothing.
"""
import torch
from torch import nn

from npdg.analysis.inference_path import unwrap_model


def _output_sizes(segmentor, input_shape):
    """Positions (H*W, or tokens) of every conv/linear output in one inference forward."""
    sizes, handles = {}, []

    def record(module, args, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        channels = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        sizes[id(module)] = out.numel() // (out.shape[0] * channels)

    for module in segmentor.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(record))
    was_training = segmentor.training
    try:
        segmentor.eval()
        with torch.no_grad():
            segmentor._forward(torch.zeros(1, *input_shape))
    finally:
        segmentor.train(was_training)
        for h in handles:
            h.remove()
    return sizes


def _layer_cost(module, handler, positions):
    """MACs that one output (or input) channel of a conv/linear takes."""
    weight = module.weight
    if handler == 'prune_out_channels':
        per_channel = weight[0].numel()
    else:  # prune_in_channels
        per_channel = weight[:, 0].numel()
    return float(per_channel * positions)


def unit_costs(segmentor, graph, units, input_shape):
    """Cost of removing one unit of each layer, in multiply-accumulates.

    Args:
        segmentor (nn.Module): Bare segmentor (not changed).
        graph: Its torch-pruning dependency graph (channel units).
        units (list): Its units (:func:`npdg.pruning.units.collect_units`).
        input_shape (tuple): (C, H, W) of the inference input.

    Returns:
        list[float]: One cost per layer of ``units`` (every unit of a layer
        costs the same).
    """
    segmentor = unwrap_model(segmentor)
    sizes = _output_sizes(segmentor, tuple(input_shape))
    costs = []
    for u in units:
        if u.kind == 'head':
            linears = [m for m in u.module.modules() if isinstance(m, nn.Linear)]
            total = sum(m.weight.numel() * sizes.get(id(m), 0) for m in linears)
            costs.append(float(total) / max(u.num_units, 1))
            continue
        pruner = graph.get_pruner_of_module(u.root)
        group = graph.get_pruning_group(u.root, pruner.prune_out_channels, [0])
        cost = 0.0
        for dep, _ in group:
            module = dep.target.module
            if isinstance(module, (nn.Conv2d, nn.Linear)) and id(module) in sizes:
                cost += _layer_cost(module, dep.handler.__name__, sizes[id(module)])
        costs.append(cost)
    return costs


def cost_weighted(scores, costs):
    """Scores divided by each unit's cost relative to the mean unit cost.

    Args:
        scores (list[Tensor]): One score vector per layer.
        costs (list[float]): One per-unit cost per layer.

    Returns:
        list[Tensor]: Score per relative cost (a layer that costs nothing
        keeps its scores, as if it cost the mean).
    """
    counts = [len(s) for s in scores]
    mean = sum(c * n for c, n in zip(costs, counts)) / max(sum(counts), 1)
    if mean <= 0:
        return list(scores)
    return [s / (c / mean) if c > 0 else s for s, c in zip(scores, costs)]
