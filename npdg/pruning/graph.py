"""Dependency graphs of mmseg segmentors, traced through every head."""
import torch
import torch.nn as nn
import torch_pruning as tp

from npdg.models.per_head_attention import PerHeadEfficientAttention


class SegmentorTracer(nn.Module):
    """Forward used for tracing: backbone (+neck) -> decode head AND auxiliary heads.

    Tracing only the decode head would leave the auxiliary head's input
    channels out of the graph, and training would crash after a prune.

    Args:
        segmentor (nn.Module): An mmseg ``EncoderDecoder``.
    """

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, inputs):
        """Run all heads.

        Args:
            inputs (Tensor): Normalised images (N, 3, H, W).

        Returns:
            list[Tensor]: Decode head output, then auxiliary outputs.
        """
        seg = self.segmentor
        feats = seg.extract_feat(inputs)
        outs = [seg.decode_head.forward(feats)]
        aux = getattr(seg, 'auxiliary_head', None)
        if aux is not None:
            heads = aux if isinstance(aux, nn.ModuleList) else [aux]
            outs.extend(h.forward(feats) for h in heads)
        return outs


def classifier_layers(segmentor):
    """The per-class output convs, never pruned.

    Args:
        segmentor (nn.Module): An mmseg segmentor.

    Returns:
        list[nn.Module]: ``conv_seg`` of the decode and auxiliary heads.
    """
    layers = []
    for name in ('decode_head', 'auxiliary_head'):
        head = getattr(segmentor, name, None)
        if head is None:
            continue
        heads = head if isinstance(head, nn.ModuleList) else [head]
        layers.extend(h.conv_seg for h in heads if hasattr(h, 'conv_seg'))
    return layers


def head_gates(segmentor):
    """Per-head gate parameters (kept out of the graph, pruned by hand).

    Args:
        segmentor (nn.Module): A segmentor.

    Returns:
        list[nn.Parameter]: Gates of every per-head attention module.
    """
    return [m.head_gate for m in segmentor.modules()
            if isinstance(m, PerHeadEfficientAttention) and m.head_gate is not None]


def build_dependency_graph(segmentor, input_shape=(3, 64, 64)):
    """Trace ``segmentor`` into a torch-pruning dependency graph.

    Args:
        segmentor (nn.Module): Bare mmseg segmentor (not DDP-wrapped).
        input_shape (tuple): (C, H, W) of the example input.

    Returns:
        tp.DependencyGraph: The graph (its module names are the
        segmentor's own, prefixed ``segmentor.``).
    """
    tracer = SegmentorTracer(segmentor)
    device = next(segmentor.parameters()).device
    # a private generator: tracing must not move the run's random state (a
    # resumed run traces again at another point of it)
    example = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    was_training = {m: m.training for m in segmentor.modules()}
    segmentor.eval()
    try:
        graph = tp.DependencyGraph().build_dependency(
            tracer, example_inputs=example, ignored_params=head_gates(segmentor),
            verbose=False)
    finally:
        for module, mode in was_training.items():
            module.training = mode
    return graph
