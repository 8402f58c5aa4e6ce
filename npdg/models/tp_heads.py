"""torch-pruning (1.6.1) interplay for ``PerHeadEfficientAttention``.

Findings this module is built on (tests/test_per_head_attention.py checks
them):

* ``tp.DependencyGraph`` traces a converted SegFormer; the group rooted at
  ``q`` output channels couples ``q``/``k``/``v`` outputs and ``proj`` inputs
  of one attention module, separate from the residual-width group (``q``
  inputs, ``proj`` outputs, norms, FFN) and from the ``sr``/``norm`` group
  (``k``/``v`` inputs) when ``sr_ratio > 1``.
* ``head_gate`` is a raw ``nn.Parameter`` of ``num_heads`` entries. Left in
  the graph (auto-detected or passed in ``unwrapped_parameters``) it joins
  the attention group with channel indices it does not have; tp's
  ``check_pruning_group`` then rejects the group and **nothing is pruned,
  silently**. It must be kept out of the graph by listing it in
  ``ignored_layers`` (tp accepts parameters there), and sliced by hand.
* ``num_heads={q: n, k: n, v: n}`` with ``prune_num_heads=True`` and
  ``prune_head_dims=False`` removes whole, consistent heads, but 1.6.1 only
  reaches head pruning inside a width scope with at least one channel to
  prune: give the attention modules a non-zero ``pruning_ratio`` (e.g. via
  ``pruning_ratio_dict={attn.q: r}``), not ``pruning_ratio=0`` alone.
* tp never updates the module attributes; ``prune_step_with_heads`` runs a
  pruner step interactively and updates ``num_heads``/``head_dim`` and the
  gate from the indices each group removes.
"""
import torch

from .head_pruning import _slice_param
from .per_head_attention import PerHeadEfficientAttention


def attention_modules(model):
    """All ``PerHeadEfficientAttention`` modules with their names.

    Args:
        model (nn.Module): Any model.

    Returns:
        list[tuple[str, PerHeadEfficientAttention]]: ``(name, module)``.
    """
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, PerHeadEfficientAttention)]


def torch_pruning_kwargs(model, ignored_layers=(),
                         prune_single_head_width=True):
    """Pruner keyword arguments that keep heads consistent.

    Args:
        model (nn.Module): Converted model.
        ignored_layers (Sequence): Further layers to ignore (e.g. the
            classifier ``decode_head.conv_seg``).
        prune_single_head_width (bool): If False, the ``q`` layer of every
            single-head module is ignored too, which keeps that module's
            attention width (its q/k/v outputs) out of width pruning. The
            residual width around it stays prunable either way.

    Returns:
        dict: ``num_heads`` ({q/k/v layer: heads} for every multi-head
        module; single-head modules are left out so their attention width is
        pruned as plain channels if at all) and ``ignored_layers`` (the
        given layers plus every ``head_gate``), and
        ``unwrapped_parameters`` (every gate declared, so tp does not warn;
        being ignored, the gates stay out of every group).
    """
    num_heads = {}
    gates = []
    ignored = list(ignored_layers)
    for _, module in attention_modules(model):
        if module.head_gate is not None:
            gates.append(module.head_gate)
        if module.num_heads == 1 and not prune_single_head_width:
            ignored.append(module.q)
        if module.num_heads > 1:
            for layer in (module.q, module.k, module.v):
                num_heads[layer] = module.num_heads
    return dict(num_heads=num_heads,
                ignored_layers=ignored + gates,
                unwrapped_parameters=[(gate, 0) for gate in gates])


def _plain_indices(idxs):
    """Plain ints from tp's index lists (ints or ``_HybridIndex``)."""
    return sorted({int(getattr(i, 'idx', i)) for i in idxs})


def removed_channels(group, model):
    """Attention channels a tp group will remove, per attention module.

    Args:
        group (tp.dependency.Group): A group from ``pruner.step(True)``.
        model (nn.Module): The model the pruner works on.

    Returns:
        list[tuple[str, PerHeadEfficientAttention, list[int]]]: Modules whose
        ``q`` output channels are in the group, with those channels.
    """
    by_q = {m.q: (name, m) for name, m in attention_modules(model)}
    found = []
    for dep, idxs in group:
        target = dep.target.module
        if target in by_q and group._DG.is_out_channel_pruning_fn(
                dep.handler):
            name, module = by_q[target]
            found.append((name, module, _plain_indices(idxs)))
    return found


def _layout_after(module, channels):
    """Kept heads and new head width after removing ``channels``.

    Whole heads may go, and every kept head may lose the same number of
    dimensions (tp's head-dim pruning); anything else is refused.

    Returns:
        tuple[list[int], list[int], int]: removed heads, kept heads, new
        head_dim.
    """
    d = module.head_dim
    counts = torch.bincount(torch.as_tensor(channels, dtype=torch.long) // d,
                            minlength=module.num_heads).tolist()
    removed = [h for h, c in enumerate(counts) if c == d]
    kept = [h for h, c in enumerate(counts) if c < d]
    partial = {counts[h] for h in kept}
    if len(partial) > 1 or not kept:
        raise RuntimeError(
            f'torch-pruning removed channels {channels} of an attention '
            f'with {module.num_heads} heads of {d}: not whole heads nor the '
            'same number of dimensions in every head. Pass num_heads from '
            'npdg.models.torch_pruning_kwargs(model) to the pruner.')
    return removed, kept, d - (partial.pop() if partial else 0)


def apply_removed_channels(module, channels):
    """Update attributes and gate after tp removed attention ``channels``.

    Args:
        module (PerHeadEfficientAttention): Module whose layers tp pruned.
        channels (list[int]): Channel indices removed (pre-pruning space).

    Returns:
        list[int]: The removed heads (pre-pruning numbering).
    """
    removed, kept, head_dim = _layout_after(module, channels)
    if module.head_gate is not None and removed:
        index = torch.as_tensor(kept, dtype=torch.long)
        _slice_param(module, 'head_gate', 0, index)
    module.num_heads = len(kept)
    module.head_dim = head_dim
    module.check_layout()
    return removed


def prune_step_with_heads(pruner, model):
    """Run one pruner step and keep every attention module consistent.

    Args:
        pruner (tp.pruner.BasePruner): Pruner built on ``model`` (or on a
            wrapper around it) with :func:`torch_pruning_kwargs`. Width
            pruning of the residual stream in the same step is fine;
            ``embed_dims`` is updated from ``proj``.
        model (nn.Module): Model that holds the attention modules.

    Returns:
        dict[str, list[int]]: Heads removed per attention module name
        (modules that only lost head dimensions map to ``[]``).
    """
    removed = {}
    for group in pruner.step(interactive=True):
        plans = removed_channels(group, model)
        group.prune()
        for name, module, channels in plans:
            removed[name] = apply_removed_channels(module, channels)
    for _, module in attention_modules(model):
        module.embed_dims = module.proj.out_features
        module.check_layout()
    return removed
