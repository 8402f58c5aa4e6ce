"""Checkpoint keys of mmseg's packed MiT attention, translated to the per-head module's.

Its own module so that :mod:`.per_head_attention` (which loads such keys) and
:mod:`.convert` (which converts modules) both import it and not each other.
"""
import torch

_LEGACY_TO_NEW = {
    'attn.out_proj.weight': 'proj.weight',
    'attn.out_proj.bias': 'proj.bias',
}


def unpack_legacy_attention_keys(state_dict, prefix, module):
    """Rewrite packed MiT attention keys under ``prefix`` in place.

    ``attn.in_proj_weight``/``attn.in_proj_bias`` are split into
    ``q``/``k``/``v``; ``attn.out_proj.*`` become ``proj.*``. If the module
    has a gate and the checkpoint has none, a gate of ones (the identity)
    is added. Keys that are not packed are left alone.

    Args:
        state_dict (dict): A state dict (modified in place).
        prefix (str): Key prefix of the attention module, e.g.
            ``'backbone.layers.0.1.0.attn.'``.
        module (PerHeadEfficientAttention): The module that will load it.

    Returns:
        bool: True if packed keys were found and rewritten.
    """
    packed = prefix + 'attn.in_proj_weight'
    if packed not in state_dict:
        return False
    for suffix in ('weight', 'bias'):
        key = prefix + 'attn.in_proj_' + suffix
        if key in state_dict:
            for part, tensor in zip('qkv', state_dict.pop(key).chunk(3, 0)):
                state_dict[f'{prefix}{part}.{suffix}'] = tensor
    for old_key, new_key in _LEGACY_TO_NEW.items():
        if prefix + old_key in state_dict:
            state_dict[prefix + new_key] = state_dict.pop(prefix + old_key)
    gate_key = prefix + 'head_gate'
    if module.head_gate is not None and gate_key not in state_dict:
        state_dict[gate_key] = torch.ones_like(module.head_gate)
    return True
