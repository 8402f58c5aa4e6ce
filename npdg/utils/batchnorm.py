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


@contextlib.contextmanager
def bn_eval(model, enabled=True):
    """Put every BN in eval mode (running statistics) inside the block.

    Needed when a training-mode forward sees a single image: BN layers after a
    global pooling (e.g. ASPP's image pool) cannot normalise one value per
    channel.

    Args:
        model (nn.Module): Any model.
        enabled (bool): Do nothing when False.

    Yields:
        None
    """
    bns = [m for m in model.modules()
           if enabled and isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        for m in bns:
            m.train()
