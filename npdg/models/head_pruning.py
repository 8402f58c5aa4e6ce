"""Remove whole attention heads from ``PerHeadEfficientAttention`` modules.

Head ``h`` occupies rows ``[h * head_dim, (h + 1) * head_dim)`` of the
``q``/``k``/``v`` weights and biases, the same columns of ``proj.weight`` and
entry ``h`` of ``head_gate``. Removing it leaves a module whose output equals
the unpruned module's output with that head's gate set to 0.

Also here: listing prunable head units, resizing a freshly built module to
the shapes of a saved (pruned) state dict so that it loads strictly, and
keeping ``embed_dims`` in step after a channel prune of the residual width.
"""
import torch
import torch.nn as nn

from .per_head_attention import PerHeadEfficientAttention

QKV = ('q', 'k', 'v')


def iter_head_units(model):
    """Yield the attention modules whose heads may be removed.

    Single-head modules are left out: removing their only head would remove
    the whole attention branch.

    Args:
        model (nn.Module): Any model.

    Yields:
        tuple[str, PerHeadEfficientAttention]: ``(name, module)`` for every
        ``PerHeadEfficientAttention`` with ``num_heads > 1``.
    """
    for name, module in model.named_modules():
        if isinstance(module, PerHeadEfficientAttention) and \
                module.num_heads > 1:
            yield name, module


def head_channels(heads, head_dim, device=None):
    """Channel indices of the given heads in the attention width.

    Args:
        heads (Sequence[int]): Head indices.
        head_dim (int): Width of one head.
        device (torch.device | None): Device of the result.

    Returns:
        Tensor: Long tensor of ``len(heads) * head_dim`` channel indices.
    """
    heads = torch.as_tensor(list(heads), dtype=torch.long, device=device)
    offsets = torch.arange(head_dim, dtype=torch.long, device=device)
    return (heads[:, None] * head_dim + offsets[None, :]).reshape(-1)


def _slice_param(owner, name, dim, index):
    """Replace ``owner.<name>`` by its slice along ``dim`` (gradient too).

    Args:
        owner (nn.Module): Module holding the parameter.
        name (str): Parameter attribute name.
        dim (int): Dimension to slice.
        index (Tensor): Indices to keep.
    """
    old = getattr(owner, name)
    if old is None:
        return
    index = index.to(old.device)
    new = nn.Parameter(old.data.index_select(dim, index).clone(),
                       requires_grad=old.requires_grad)
    if old.grad is not None:
        new.grad = old.grad.index_select(dim, index).clone()
    setattr(owner, name, new)


def _keep_rows(linear, rows):
    """Keep output rows ``rows`` of an ``nn.Linear``."""
    _slice_param(linear, 'weight', 0, rows)
    _slice_param(linear, 'bias', 0, rows)
    linear.out_features = len(rows)


def _keep_cols(linear, cols):
    """Keep input columns ``cols`` of an ``nn.Linear``."""
    _slice_param(linear, 'weight', 1, cols)
    linear.in_features = len(cols)


def _check_removable(module, heads):
    """Validate a head-removal request and return the sorted unique heads.

    Args:
        module (PerHeadEfficientAttention): Module to prune.
        heads (Iterable[int]): Heads to remove.

    Returns:
        list[int]: Sorted unique head indices.
    """
    if not isinstance(module, PerHeadEfficientAttention):
        raise TypeError(
            'remove_heads needs a PerHeadEfficientAttention, got '
            f'{type(module).__name__}; convert the model first with '
            'npdg.models.convert_mit_attention(model).')
    if module.num_heads == 1:
        raise ValueError(
            'remove_heads: this attention has a single head; single-head '
            'stages are excluded from head removal (removing the head would '
            'remove the whole attention branch). Skip it, e.g. iterate '
            'npdg.models.iter_head_units(model).')
    heads = sorted({int(h) for h in heads})
    bad = [h for h in heads if not 0 <= h < module.num_heads]
    if bad:
        raise ValueError(f'remove_heads: head indices {bad} are out of range '
                         f'for num_heads={module.num_heads}.')
    if len(heads) == module.num_heads:
        raise ValueError(
            f'remove_heads: refusing to remove all {module.num_heads} heads; '
            'keep at least one head per attention module.')
    return heads


def remove_heads(module, head_indices):
    """Physically remove whole heads from a ``PerHeadEfficientAttention``.

    The module's parameters are replaced by new, smaller ``nn.Parameter``
    objects (gradients are sliced along); ``num_heads`` is updated,
    ``head_dim`` and the attention scale stay unchanged. An optimizer that
    holds the old parameters must be updated (see the returned index map).

    Args:
        module (PerHeadEfficientAttention): The module, modified in place.
        head_indices (Iterable[int]): Heads to remove (current numbering).

    Returns:
        dict[str, tuple[int, Tensor]]: For every sliced parameter (name
        relative to ``module``, e.g. ``'q.weight'``, ``'proj.weight'``,
        ``'head_gate'``), the dimension sliced and the kept indices, e.g.
        to slice optimizer state. Empty if ``head_indices`` is empty.
    """
    heads = _check_removable(module, head_indices)
    if not heads:
        return {}
    kept_heads = [h for h in range(module.num_heads) if h not in heads]
    device = module.q.weight.device
    rows = head_channels(kept_heads, module.head_dim, device)
    kept = {}
    for name in QKV:
        layer = getattr(module, name)
        _keep_rows(layer, rows)
        kept[f'{name}.weight'] = (0, rows)
        if layer.bias is not None:
            kept[f'{name}.bias'] = (0, rows)
    _keep_cols(module.proj, rows)
    kept['proj.weight'] = (1, rows)
    if module.head_gate is not None:
        gate_idx = torch.as_tensor(kept_heads, dtype=torch.long,
                                   device=device)
        _slice_param(module, 'head_gate', 0, gate_idx)
        kept['head_gate'] = (0, gate_idx)
    module.num_heads = len(kept_heads)
    return kept


def sync_embed_dims(model):
    """Set every per-head attention's ``embed_dims`` to its layers' residual width.

    A channel prune of the embedding width (torch-pruning, grouped pruning's
    width units) resizes ``q``/``k``/``v`` inputs and ``proj`` outputs but
    not the attribute, which the saved structure records.

    Args:
        model (nn.Module): Any model.
    """
    for m in model.modules():
        if isinstance(m, PerHeadEfficientAttention):
            m.embed_dims = m.q.in_features


def _saved_shape(state_dict, key):
    """Shape of ``state_dict[key]`` or a clear KeyError."""
    if key not in state_dict:
        raise KeyError(
            f'resize_to_state_dict: key {key!r} is missing from the state '
            'dict; pass the model state dict (unwrapped from the checkpoint '
            "dict's 'state_dict' entry) and the module's prefix.")
    return tuple(state_dict[key].shape)


def _new_linear(old, out_features, in_features, has_bias):
    """A zero ``nn.Linear`` of the given size on ``old``'s device/dtype."""
    layer = nn.Linear(in_features, out_features, bias=has_bias,
                      device=old.weight.device, dtype=old.weight.dtype)
    nn.init.zeros_(layer.weight)
    if has_bias:
        nn.init.zeros_(layer.bias)
    layer.train(old.training)
    return layer


def _saved_head_layout(module, state_dict, prefix, width):
    """Head count and head width of a saved module.

    ``head_gate`` (one entry per head) gives the head count; without a gate
    the head width is assumed unchanged.

    Returns:
        tuple[int, int]: ``(num_heads, head_dim)``.
    """
    gate_key = prefix + 'head_gate'
    if gate_key in state_dict:
        num_heads = int(state_dict[gate_key].shape[0])
    elif width % module.head_dim == 0:
        num_heads = width // module.head_dim
    else:
        raise ValueError(
            f'resize_to_state_dict: {prefix}q has {width} output channels, '
            f'not a multiple of head_dim={module.head_dim}, and there is no '
            f'{gate_key!r} to tell the head count.')
    if num_heads < 1 or width % num_heads:
        raise ValueError(
            f'resize_to_state_dict: {prefix}q has {width} output channels, '
            f'which cannot be split into {num_heads} equal heads.')
    return num_heads, width // num_heads


def resize_to_state_dict(module, state_dict, prefix=''):
    """Resize a fresh ``PerHeadEfficientAttention`` to saved shapes.

    Replaces ``q``/``k``/``v``/``proj`` (and ``head_gate``) by zero layers of
    the saved sizes and sets ``num_heads``, ``head_dim`` and ``embed_dims``,
    so that ``load_state_dict(strict=True)`` then fills them exactly. The
    attention scale of the fresh module (that of the original head width) is
    kept. ``sr``/``norm`` are ordinary layers and are not resized here.

    Args:
        module (PerHeadEfficientAttention): Freshly built module (modified).
        state_dict (dict): Saved state dict.
        prefix (str): Key prefix of the module in ``state_dict``, e.g.
            ``'backbone.layers.1.1.0.attn.'`` (with the trailing dot).

    Returns:
        PerHeadEfficientAttention: ``module``.
    """
    if f'{prefix}attn.in_proj_weight' in state_dict:
        return module  # unpruned, packed checkpoint: shapes already match
    q_out, q_in = _saved_shape(state_dict, prefix + 'q.weight')
    kv_in = _saved_shape(state_dict, prefix + 'k.weight')[1]
    proj_out, proj_in = _saved_shape(state_dict, prefix + 'proj.weight')
    if proj_in != q_out:
        raise ValueError(f'resize_to_state_dict: {prefix}proj takes '
                         f'{proj_in} inputs but {prefix}q gives {q_out}.')
    num_heads, head_dim = _saved_head_layout(module, state_dict, prefix,
                                             q_out)
    for name, in_features in zip(QKV, (q_in, kv_in, kv_in)):
        has_bias = f'{prefix}{name}.bias' in state_dict
        setattr(module, name, _new_linear(getattr(module, name), q_out,
                                          in_features, has_bias))
    module.proj = _new_linear(module.proj, proj_out, proj_in,
                              f'{prefix}proj.bias' in state_dict)
    if module.head_gate is not None:
        module.head_gate = nn.Parameter(module.head_gate.data.new_ones(
            num_heads))
    module.num_heads = num_heads
    module.head_dim = head_dim
    module.embed_dims = proj_out
    return module


def resize_heads_to_state_dict(model, state_dict):
    """Resize every ``PerHeadEfficientAttention`` of ``model`` to saved shapes.

    Args:
        model (nn.Module): Freshly built (and converted) model.
        state_dict (dict): Saved state dict whose keys are relative to
            ``model``.

    Returns:
        int: Number of attention modules resized.
    """
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, PerHeadEfficientAttention):
            prefix = f'{name}.' if name else ''
            resize_to_state_dict(module, state_dict, prefix)
            count += 1
    return count


def head_layout(model):
    """Per-module head layout, e.g. to store next to a pruned checkpoint.

    Args:
        model (nn.Module): Any model.

    Returns:
        dict[str, dict]: ``{name: {'num_heads': int, 'head_dim': int}}`` for
        every ``PerHeadEfficientAttention``.
    """
    return {name: dict(num_heads=m.num_heads, head_dim=m.head_dim)
            for name, m in model.named_modules()
            if isinstance(m, PerHeadEfficientAttention)}
