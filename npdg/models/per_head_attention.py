"""SegFormer efficient attention with separate q/k/v layers and per-head gates.

``PerHeadEfficientAttention`` computes exactly what mmseg's
``EfficientMultiheadAttention`` computes, but with separate ``q``, ``k``,
``v`` and ``proj`` ``nn.Linear`` layers instead of the packed
``nn.MultiheadAttention``. That makes three things possible:

* observing each head's output (``head_observer``), which the fused kernel of
  ``nn.MultiheadAttention`` hides from forward hooks;
* a learnable per-head scale ``head_gate`` (the "gamma" of a head in
  network-slimming style sparse training);
* removing whole heads, so that the attention width ``num_heads * head_dim``
  may become smaller than the residual width ``embed_dims``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import Conv2d, build_norm_layer
from mmcv.cnn.bricks.drop import build_dropout
from mmengine.model import BaseModule
from mmseg.models.utils import nchw_to_nlc, nlc_to_nchw
from mmseg.registry import MODELS

from .attention_keys import unpack_legacy_attention_keys

ATTN_IMPLS = ('sdpa', 'math')


def _check_head_layout(embed_dims, num_heads, head_dim):
    """Return the head width, checking that the head layout is valid.

    Args:
        embed_dims (int): Residual width.
        num_heads (int): Number of heads.
        head_dim (int | None): Width of one head; None means
            ``embed_dims // num_heads``.

    Returns:
        int: The head width.
    """
    if num_heads < 1:
        raise ValueError(f'num_heads must be >= 1, got {num_heads}.')
    if head_dim is None:
        if embed_dims % num_heads:
            raise ValueError(
                f'embed_dims ({embed_dims}) is not divisible by num_heads '
                f'({num_heads}); pass head_dim explicitly.')
        head_dim = embed_dims // num_heads
    if head_dim < 1:
        raise ValueError(f'head_dim must be >= 1, got {head_dim}.')
    return head_dim


@MODELS.register_module()
class PerHeadEfficientAttention(BaseModule):
    """Efficient multi-head attention of SegFormer with per-head units.

    Same constructor arguments and forward signature as
    ``mmseg.models.backbones.mit.EfficientMultiheadAttention``, plus
    ``head_dim``, ``use_gate``, ``attn_impl`` and ``proj_bias``.

    Args:
        embed_dims (int): Residual (input and output) width.
        num_heads (int): Number of attention heads.
        attn_drop (float): Dropout probability on the attention weights.
        proj_drop (float): Dropout probability after the output projection.
        dropout_layer (dict | None): Config of the layer applied to the
            attention branch before the residual add (e.g. DropPath).
        init_cfg (dict | None): Initialization config.
        batch_first (bool): Input is (B, L, C) if True, else (L, B, C).
        qkv_bias (bool): Whether q, k and v have a bias.
        norm_cfg (dict): Norm config for the spatial-reduction branch.
        sr_ratio (int): Spatial reduction ratio of keys and values.
        head_dim (int | None): Width of one head. Defaults to
            ``embed_dims // num_heads``. The attention scale is fixed to
            ``head_dim ** -0.5`` here and never changes afterwards.
        use_gate (bool): Whether to create the learnable ``head_gate``.
        attn_impl (str): ``'sdpa'`` (``F.scaled_dot_product_attention``) or
            ``'math'`` (explicit softmax(QK^T * scale) V). Both give the
            per-head output (B, H, L, d) to the observer.
        proj_bias (bool | None): Whether ``proj`` has a bias; None follows
            ``qkv_bias`` like ``nn.MultiheadAttention`` does.

    Attributes:
        head_gate (nn.Parameter | None): Shape (num_heads,), init 1; head h's
            output is multiplied by ``head_gate[h]`` before ``proj``.
        head_observer (Callable | None): Called in every forward with the
            per-head output (B, num_heads, Lq, head_dim) before the gate. The
            tensor is not detached (gradients may flow); detach it before
            storing. Use a plain function (an ``nn.Module`` assigned here
            would become a submodule) and reset it to None before saving or
            pickling the model.
        last_hw (tuple[int, int] | None): ``hw_shape`` of the last forward
            (queries are the H*W tokens in row-major order).
        scale (float): ``original head_dim ** -0.5``; kept when heads (or,
            through torch-pruning, head dimensions) are removed.
    """

    def __init__(self,
                 embed_dims,
                 num_heads,
                 attn_drop=0.,
                 proj_drop=0.,
                 dropout_layer=None,
                 init_cfg=None,
                 batch_first=True,
                 qkv_bias=False,
                 norm_cfg=dict(type='LN'),
                 sr_ratio=1,
                 head_dim=None,
                 use_gate=True,
                 attn_impl='sdpa',
                 proj_bias=None):
        super().__init__(init_cfg)
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(
                f'attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}.')
        head_dim = _check_head_layout(embed_dims, num_heads, head_dim)
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = head_dim ** -0.5
        self.batch_first = batch_first
        self.sr_ratio = sr_ratio
        self.attn_impl = attn_impl
        self.head_observer = None
        self.last_hw = None

        width = num_heads * head_dim
        proj_bias = qkv_bias if proj_bias is None else proj_bias
        self.q = nn.Linear(embed_dims, width, bias=qkv_bias)
        self.k = nn.Linear(embed_dims, width, bias=qkv_bias)
        self.v = nn.Linear(embed_dims, width, bias=qkv_bias)
        self.proj = nn.Linear(width, embed_dims, bias=proj_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)
        self.dropout_layer = (build_dropout(dropout_layer)
                              if dropout_layer else nn.Identity())
        if use_gate:
            self.head_gate = nn.Parameter(torch.ones(num_heads))
        else:
            self.register_parameter('head_gate', None)
        if sr_ratio > 1:
            self.sr = Conv2d(embed_dims, embed_dims, kernel_size=sr_ratio,
                             stride=sr_ratio)
            self.norm = build_norm_layer(norm_cfg, embed_dims)[1]

    @property
    def use_gate(self):
        """bool: Whether this module has a learnable ``head_gate``."""
        return self.head_gate is not None

    def extra_repr(self):
        """Return the head layout for ``print(module)``."""
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'head_dim={self.head_dim}, sr_ratio={self.sr_ratio}, '
                f'use_gate={self.use_gate}, attn_impl={self.attn_impl!r}')

    def check_layout(self):
        """Raise if the layer sizes disagree with ``num_heads``/``head_dim``.

        Layers changed by hand or by torch-pruning leave the attributes
        stale; ``npdg.models.remove_heads`` (heads) and
        ``npdg.models.resize_to_state_dict`` (a saved layout) keep them in step.
        """
        width = self.num_heads * self.head_dim
        sizes = dict(q=self.q.out_features, k=self.k.out_features,
                     v=self.v.out_features, proj_in=self.proj.in_features)
        if self.head_gate is not None:
            sizes['head_gate'] = self.head_gate.numel() * self.head_dim
        bad = {k: v for k, v in sizes.items() if v != width}
        if bad:
            raise RuntimeError(
                f'PerHeadEfficientAttention: num_heads={self.num_heads} x '
                f'head_dim={self.head_dim} = {width}, but the layers have '
                f'{sizes} (head_gate counted x head_dim). After changing the '
                'layers, update the attributes (npdg.models.remove_heads '
                'removes whole heads and does it).')

    def _split_heads(self, x):
        """Reshape (B, L, H * d) to (B, H, L, d)."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads,
                      self.head_dim).transpose(1, 2)

    def _reduce_kv(self, x, hw_shape):
        """Spatially reduce keys/values as the original module does."""
        if self.sr_ratio <= 1:
            return x
        x_kv = nchw_to_nlc(self.sr(nlc_to_nchw(x, hw_shape)))
        return self.norm(x_kv)

    def _attend(self, q, k, v):
        """Per-head attention output (B, H, Lq, d) from (B, H, L, d) inputs."""
        if self.attn_impl == 'sdpa':
            drop = self.attn_drop.p if self.training else 0.
            return F.scaled_dot_product_attention(
                q, k, v, dropout_p=drop, scale=self.scale)
        weights = torch.matmul(q * self.scale, k.transpose(-2, -1))
        weights = self.attn_drop(weights.softmax(dim=-1))
        return torch.matmul(weights, v)

    def head_outputs(self, x_q, x_kv):
        """Per-head attention outputs before the gate.

        Args:
            x_q (Tensor): Queries' input, (B, Lq, embed_dims).
            x_kv (Tensor): Keys'/values' input, (B, Lkv, embed_dims).

        Returns:
            Tensor: Shape (B, num_heads, Lq, head_dim).
        """
        q = self._split_heads(self.q(x_q))
        k = self._split_heads(self.k(x_kv))
        v = self._split_heads(self.v(x_kv))
        return self._attend(q, k, v)

    def merge_heads(self, heads):
        """Gate, concatenate and project per-head outputs.

        Args:
            heads (Tensor): Shape (B, num_heads, L, head_dim).

        Returns:
            Tensor: Shape (B, L, embed_dims), before proj_drop.
        """
        if self.head_gate is not None:
            heads = heads * self.head_gate.view(1, -1, 1, 1)
        batch, _, length, _ = heads.shape
        merged = heads.transpose(1, 2).reshape(
            batch, length, self.num_heads * self.head_dim)
        return self.proj(merged)

    def forward(self, x, hw_shape, identity=None):
        """Attention branch plus residual, as ``EfficientMultiheadAttention``.

        Args:
            x (Tensor): (B, L, C) if ``batch_first`` else (L, B, C).
            hw_shape (Sequence[int]): Spatial size (H, W) of the tokens.
            identity (Tensor | None): Residual input; defaults to ``x``.

        Returns:
            Tensor: Same shape as ``x``.
        """
        self.check_layout()
        self.last_hw = tuple(hw_shape)
        x_q = x
        x_kv = self._reduce_kv(x, hw_shape)
        if identity is None:
            identity = x_q
        if not self.batch_first:
            x_q = x_q.transpose(0, 1)
            x_kv = x_kv.transpose(0, 1)
        heads = self.head_outputs(x_q, x_kv)
        if self.head_observer is not None:
            self.head_observer(heads)
        out = self.merge_heads(heads)
        if not self.batch_first:
            out = out.transpose(0, 1)
        return identity + self.dropout_layer(self.proj_drop(out))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Also accept the packed ``attn.in_proj_*`` keys of mmseg MiT."""
        unpack_legacy_attention_keys(state_dict, prefix, self)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def set_attn_impl(model, attn_impl):
    """Set ``attn_impl`` of every ``PerHeadEfficientAttention`` in ``model``.

    ``'math'`` is what FLOP counters need: mmengine's (fvcore) counter skips
    ``scaled_dot_product_attention`` but counts the explicit matmuls, giving
    the same count as the original packed attention.

    Args:
        model (nn.Module): Any model.
        attn_impl (str): ``'sdpa'`` or ``'math'``.

    Returns:
        dict[str, str]: The previous implementation per module name, to
        restore later.
    """
    if attn_impl not in ATTN_IMPLS:
        raise ValueError(
            f'attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}.')
    previous = {}
    for name, module in model.named_modules():
        if isinstance(module, PerHeadEfficientAttention):
            previous[name] = module.attn_impl
            module.attn_impl = attn_impl
    return previous
