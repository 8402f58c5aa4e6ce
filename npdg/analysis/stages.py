"""Which stage of a network a layer belongs to (for per-stage reports)."""

# EfficientNet-Lite0 stages (strides 2, 4, 8, 16, 16, 32, 32): blocks 0 | 1-2 | 3-4 | 5-7 |
# 8-10 | 11-14 | 15 (npdg/models/efficientnet_lite.py, arch 'lite0').
LITE0_STAGES = ((0, 1), (1, 3), (3, 5), (5, 8), (8, 11), (11, 15), (15, 16))


def stage_of(name):
    """Stage of a layer: a ResNet ``layerN``, an EfficientNet-Lite0 stage, stem or head.

    Args:
        name (str): Module name in the segmentor, e.g.
            ``'backbone._blocks.9._depthwise_conv'`` or ``'backbone.layer2.0.conv1'``.

    Returns:
        str: ``'backbone.stage4'``, ``'backbone.layer2'``, ``'backbone.stem'``, or the
        top-level module (``'decode_head'``) outside the backbone.
    """
    parts = name.split('.')
    if parts[0] != 'backbone':
        return parts[0]
    if '_blocks' in parts:
        block = int(parts[parts.index('_blocks') + 1])
        return 'backbone.stage%d' % next(i for i, (a, b) in enumerate(LITE0_STAGES)
                                         if a <= block < b)
    layer = next((p for p in parts if p.startswith('layer')), None)
    return f'backbone.{layer}' if layer else 'backbone.stem'
