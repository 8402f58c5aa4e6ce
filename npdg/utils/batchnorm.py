"""Run extra forward passes without disturbing BN running statistics."""
import contextlib

import torch.nn as nn


@contextlib.contextmanager
def frozen_bn_stats(model):
    """Keep every BN's running mean/var unchanged inside the block.

    Sets ``momentum`` to 0 (the running update becomes a no-op) and puts
    ``num_batches_tracked`` back afterwards; cheaper than copying buffers.

    Args:
        model (nn.Module): Any model.

    Yields:
        None
    """
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            saved.append((m, m.momentum, None if m.num_batches_tracked is None
                          else m.num_batches_tracked.clone()))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
