"""Swap mmseg's packed SegFormer attention for ``PerHeadEfficientAttention``.

``convert_mit_attention`` replaces every
``mmseg.models.backbones.mit.EfficientMultiheadAttention`` in a model by an
exactly equivalent ``PerHeadEfficientAttention`` (weights copied, same
train/eval mode, device and dtype). ``unpack_legacy_attention_keys`` lets a
converted model load checkpoints saved before conversion (packed
``attn.in_proj_weight`` keys), which ``PerHeadEfficientAttention`` applies
automatically in ``_load_from_state_dict``.
"""
import torch
from mmseg.models.backbones.mit import EfficientMultiheadAttention

from .attention_keys import unpack_legacy_attention_keys  # noqa: F401  (re-exported)
from .per_head_attention import PerHeadEfficientAttention


def _check_supported(name, mha):
    """Refuse ``nn.MultiheadAttention`` features the swap does not model.

    Args:
        name (str): Module name, for the error message.
        mha (nn.MultiheadAttention): The wrapped attention.
    """
    if mha.bias_k is not None or mha.add_zero_attn:
        raise ValueError(
            f'{name}: add_bias_kv / add_zero_attn are not supported by '
            'PerHeadEfficientAttention; build the attention without them.')
    if mha.batch_first:
        raise ValueError(
            f'{name}: the inner nn.MultiheadAttention has batch_first=True, '
            'which mmcv\'s MultiheadAttention wrapper never sets; '
            'refusing to guess the layout.')


def _packed_qkv(mha):
    """Return the (q, k, v) weights and biases of ``nn.MultiheadAttention``.

    Args:
        mha (nn.MultiheadAttention): The attention to read.

    Returns:
        tuple: ``(weights, biases)``; each a list of 3 tensors (biases may
        be ``[None] * 3``).
    """
    if mha._qkv_same_embed_dim:
        weights = list(mha.in_proj_weight.chunk(3, dim=0))
    else:
        weights = [mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight]
    if mha.in_proj_bias is None:
        biases = [None] * 3
    else:
        biases = list(mha.in_proj_bias.chunk(3, dim=0))
    return weights, biases


def _copy_linear(dst, weight, bias, requires_grad):
    """Copy a weight/bias pair into ``dst`` (an ``nn.Linear``)."""
    with torch.no_grad():
        dst.weight.copy_(weight)
        if bias is not None:
            dst.bias.copy_(bias)
    for param in dst.parameters():
        param.requires_grad_(requires_grad)


def from_efficient_attention(old, name='attention', use_gate=True,
                             attn_impl='sdpa'):
    """Build a ``PerHeadEfficientAttention`` equal to ``old``.

    The spatial-reduction conv/norm and the dropout layers are moved over
    (the same module objects), the packed projections are split and copied.

    Args:
        old (EfficientMultiheadAttention): The module to replace.
        name (str): Its name, used in error messages.
        use_gate (bool): Whether the new module gets a ``head_gate``.
        attn_impl (str): ``'sdpa'`` or ``'math'``.

    Returns:
        PerHeadEfficientAttention: The equivalent module.
    """
    mha = old.attn
    _check_supported(name, mha)
    weights, biases = _packed_qkv(mha)
    new = PerHeadEfficientAttention(
        embed_dims=old.embed_dims, num_heads=old.num_heads,
        attn_drop=mha.dropout, proj_drop=old.proj_drop.p,
        dropout_layer=None, init_cfg=old.init_cfg,
        batch_first=old.batch_first, qkv_bias=biases[0] is not None,
        sr_ratio=old.sr_ratio, use_gate=use_gate, attn_impl=attn_impl,
        proj_bias=mha.out_proj.bias is not None)
    new.dropout_layer = old.dropout_layer
    if old.sr_ratio > 1:
        new.sr = old.sr
        new.norm = old.norm
    ref = mha.out_proj.weight
    new.to(device=ref.device, dtype=ref.dtype)
    grad = ref.requires_grad
    for layer, weight, bias in zip((new.q, new.k, new.v), weights, biases):
        _copy_linear(layer, weight, bias, grad)
    _copy_linear(new.proj, mha.out_proj.weight, mha.out_proj.bias, grad)
    new._is_init = getattr(old, '_is_init', False)
    new.train(old.training)
    return new


def _parent_and_attr(model, name):
    """Return the parent module and attribute name of a dotted module name."""
    parent_name, _, attr = name.rpartition('.')
    parent = model.get_submodule(parent_name) if parent_name else model
    return parent, attr


def convert_mit_attention(model, use_gate=True, attn_impl='sdpa'):
    """Replace every ``EfficientMultiheadAttention`` inside ``model``.

    Args:
        model (nn.Module): Any model (a MiT backbone, an EncoderDecoder, ...).
            It is modified in place.
        use_gate (bool): Whether the new modules get a ``head_gate``.
        attn_impl (str): ``'sdpa'`` or ``'math'``.

    Returns:
        int: Number of modules replaced.
    """
    if isinstance(model, EfficientMultiheadAttention):
        raise TypeError(
            'convert_mit_attention replaces submodules in place; pass the '
            'model that contains the attention, or use '
            'from_efficient_attention(module) for a single module.')
    targets = [name for name, module in model.named_modules()
               if isinstance(module, EfficientMultiheadAttention)]
    for name in targets:
        parent, attr = _parent_and_attr(model, name)
        old = getattr(parent, attr)
        setattr(parent, attr, from_efficient_attention(
            old, name=name, use_gate=use_gate, attn_impl=attn_impl))
    return len(targets)


def is_converted(model):
    """Whether ``model`` holds no packed ``EfficientMultiheadAttention``.

    Args:
        model (nn.Module): The model to check.

    Returns:
        bool: True if no ``EfficientMultiheadAttention`` is left.
    """
    return not any(isinstance(m, EfficientMultiheadAttention)
                   for m in model.modules())


__all__ = ['convert_mit_attention', 'from_efficient_attention',
           'unpack_legacy_attention_keys', 'is_converted']
