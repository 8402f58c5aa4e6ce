"""Model components of npdg: SegFormer attention with per-head units."""
from .convert import (
                      convert_mit_attention,
                      from_efficient_attention,
                      is_converted,
                      unpack_legacy_attention_keys,
)
from .efficientnet_lite import EfficientNetLite, EfficientNetLiteClassifier  # noqa: F401
from .head_pruning import (
                      head_channels,
                      head_layout,
                      iter_head_units,
                      remove_heads,
                      resize_heads_to_state_dict,
                      resize_to_state_dict,
                      sync_embed_dims,
)
from .per_head_attention import PerHeadEfficientAttention, set_attn_impl

__all__ = [
    'PerHeadEfficientAttention', 'set_attn_impl', 'convert_mit_attention',
    'from_efficient_attention', 'is_converted',
    'unpack_legacy_attention_keys', 'head_channels', 'head_layout',
    'iter_head_units', 'remove_heads', 'resize_heads_to_state_dict',
    'resize_to_state_dict', 'sync_embed_dims'
]
