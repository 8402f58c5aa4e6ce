"""Keep training going after a structural prune in the middle of a run.

Structural pruning (torch-pruning 1.6.1, ``npdg.models.remove_heads``)
replaces every pruned ``nn.Parameter`` by a new, smaller one. Everything that
held the old objects must follow: the optimizer (its ``param_groups`` and
per-parameter ``state``), an EMA copy of the model and the DDP wrapper.

The common currency is a *kept map*::

    {param_name: [(dim, kept_idx), ...]}

``param_name`` is the name in ``model.named_parameters()`` of the bare model
(no ``module.`` prefix of a DDP wrapper); each ``(dim, kept_idx)`` is one
``index_select(dim, kept_idx)`` that was applied to the parameter, in order
(a conv may first lose output channels in one group and then input channels
in another). ``None`` instead of the list means "changed, indices unknown":
its optimizer state is then dropped.

Pieces, one module each, layered bottom-up (each imports only those above it
in this list):

* :mod:`.kept` - the kept map's index algebra (normalise, merge, apply,
  infer by exact slice matching);
* :mod:`.recorder` - records the kept map of torch-pruning calls;
* :mod:`.optim_state` - optimizer surgery;
* :mod:`.ema` - EMA surgery;
* :mod:`npdg.engine.rebuild` - the one function that rebuilds a running Runner
  (runner-facing, so it lives in :mod:`npdg.engine`).

This module re-exports their public names:

* :class:`PruningRecorder` builds the kept map around torch-pruning calls.
  It intercepts ``BasePruningFunc._prune_parameter_and_grad``, the single
  helper through which every torch-pruning 1.6.1 layer pruner replaces a
  parameter, so it sees the exact old parameter object, dimension and kept
  indices (grouped/depthwise convs, concat and flatten index mappings,
  LSTM/attention index expansion are all already resolved there). Changes
  made outside torch-pruning inside the context (e.g. a ``head_gate`` sliced
  by hand) are recovered by exact slice matching, or marked unknown.
* :func:`sync_optimizer` swaps the new parameters into the optimizer by name
  and slices their state; the optimizer object (and so the mmengine
  ``OptimWrapper`` and the param schedulers bound to it) is kept.
* :func:`rebuild_averaged_model` re-creates the EMA copy with the averages
  carried over.
* :func:`npdg.engine.rebuild.rebuild_after_prune` does all of it for an mmengine ``Runner``,
  including re-wrapping DDP.
"""

from .ema import rebuild_averaged_model
from .kept import (
                   apply_kept,
                   infer_kept_indices,
                   kept_shape,
                   merge_kept,
                   normalize_kept,
                   prefix_kept,
                   snapshot_params,
)
from .optim_state import sync_optimizer
from .recorder import PruningRecorder

__all__ = [
    'PruningRecorder', 'snapshot_params', 'normalize_kept', 'prefix_kept',
    'merge_kept', 'apply_kept', 'kept_shape', 'infer_kept_indices',
    'sync_optimizer', 'rebuild_averaged_model'
]
