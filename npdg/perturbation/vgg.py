"""Frozen VGG-19 encoder (up to relu4_1) for DSP, and its weight loading.

Layer layout and parameter names are exactly those of torchvision's
``vgg19().features[:21]`` (and of ``mmcv.cnn.VGG(depth=19)``, which uses the
same ``features.N`` indexing), so their weights load after dropping the
layers past relu4_1. Expected keys (9 convs):

    features.{0,2,5,7,10,12,14,16,19}.weight / .bias

:func:`convert_vgg19_state_dict` turns a torchvision ``vgg19`` state dict
(``features.N.weight``, ``classifier.*``), an ``mmcv.cnn.VGG(depth=19)``
one, or either wrapped in ``{'state_dict': ...}`` / prefixed with
``module.``/``backbone.``, into these keys. The batch-norm variant
(``vgg19_bn``) has other indices and is not supported.

The encoder takes RGB images in [0, 255] and applies the ImageNet
normalisation ((x / 255 - mean) / std) itself.
"""
import os.path as osp
import pickle

import torch
from torch import nn

from npdg.utils.checkpoint_io import atomic_write

# (in, out) channels of the convs of vgg19.features[:21]; 'M' = 2x2 max pool
VGG19_RELU4_1_CFG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512)
# indices in ``features`` of relu1_1, relu2_1, relu3_1, relu4_1
STYLE_LAYER_IDS = (1, 6, 11, 20)
STYLE_LAYER_NAMES = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1')
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREFIXES = ('module.', 'backbone.', 'encoder.', 'vgg.')


def build_vgg19_relu4_1():
    """Build ``vgg19.features[:21]`` with torchvision's indices.

    Returns:
        nn.Sequential: Convs (3x3, padding 1), ReLUs and max pools; output
        of the last layer is relu4_1 (512 channels, 1/8 resolution).
    """
    layers, in_ch = [], 3
    for item in VGG19_RELU4_1_CFG:
        if item == 'M':
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, item, kernel_size=3, padding=1), nn.ReLU()]
            in_ch = item
    return nn.Sequential(*layers)


def conv_indices():
    """Indices of the convolutions inside ``build_vgg19_relu4_1()``.

    Returns:
        list[int]: ``[0, 2, 5, 7, 10, 12, 14, 16, 19]``.
    """
    return [i for i, m in enumerate(build_vgg19_relu4_1()) if isinstance(m, nn.Conv2d)]


class VGGEncoder(nn.Module):
    """VGG-19 up to relu4_1 with ImageNet input normalisation built in.

    Input: RGB images in [0, 255], float (B, 3, H, W).
    """

    def __init__(self):
        super().__init__()
        self.features = build_vgg19_relu4_1()
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def preprocess(self, images):
        """RGB [0, 255] -> ImageNet-normalised RGB."""
        return (images / 255.0 - self.mean) / self.std

    def forward(self, images, all_layers=False):
        """Encode images.

        Args:
            images (torch.Tensor): RGB in [0, 255], (B, 3, H, W).
            all_layers (bool): Return relu1_1, relu2_1, relu3_1 and relu4_1
                instead of relu4_1 only.

        Returns:
            torch.Tensor | list[torch.Tensor]: relu4_1 features (B, 512, H/8,
            W/8), or the four style layers.
        """
        x = self.preprocess(images)
        outs = []
        for idx, layer in enumerate(self.features):
            x = layer(x)
            if all_layers and idx in STYLE_LAYER_IDS:
                outs.append(x)
        return outs if all_layers else x

    def init_random(self, seed=0):
        """Random (Kaiming, fan-out) weights, for smoke tests only.

        Args:
            seed (int): Seed of the draw.
        """
        gen = torch.Generator().manual_seed(seed)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen)
                                   * (2.0 / fan_out) ** 0.5)
                    m.bias.zero_()


def _strip_prefixes(key):
    """Remove wrapper prefixes (``module.``, ``backbone.``, ...) from a key."""
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def convert_vgg19_state_dict(state_dict, source='<state dict>'):
    """Convert torchvision/mmcv VGG-19 weights to :class:`VGGEncoder` keys.

    Keeps ``features.N.weight``/``.bias`` for the convs up to relu4_1
    (N in 0, 2, 5, 7, 10, 12, 14, 16, 19), drops deeper layers and the
    classifier, and unwraps ``{'state_dict': ...}`` and ``module.`` /
    ``backbone.`` / ``encoder.`` / ``vgg.`` prefixes.

    Args:
        state_dict (dict): A VGG-19 state dict.
        source (str): Where it came from, for error messages.

    Returns:
        dict[str, torch.Tensor]: ``features.N.*`` keys ready for
        ``VGGEncoder.load_state_dict(..., strict=False)`` (buffers excluded).
    """
    if isinstance(state_dict, dict) and 'state_dict' in state_dict:
        state_dict = state_dict['state_dict']
    if not isinstance(state_dict, dict):
        raise TypeError(f'{source}: expected a VGG-19 state dict, got '
                        f'{type(state_dict).__name__}.')
    expected = {}
    for idx, module in enumerate(build_vgg19_relu4_1()):
        if isinstance(module, nn.Conv2d):
            expected[f'features.{idx}.weight'] = module.weight.shape
            expected[f'features.{idx}.bias'] = module.bias.shape
    converted = {}
    for key, value in state_dict.items():
        key = _strip_prefixes(key)
        if key in expected:
            converted[key] = value
    missing = sorted(set(expected) - set(converted), key=_key_order)
    if missing:
        sample = ', '.join(list(state_dict)[:6])
        raise KeyError(
            f'{source}: not a torchvision/mmcv VGG-19 state dict; missing {missing[:4]}'
            f'{" ..." if len(missing) > 4 else ""} (its keys start: {sample}). Expected '
            'torchvision vgg19 keys "features.N.weight" (vgg19_bn is not supported), e.g. '
            'from torch.save(torchvision.models.vgg19(weights="IMAGENET1K_V1").state_dict(), '
            'PATH) on a machine with torchvision.')
    for key, shape in expected.items():
        if tuple(converted[key].shape) != tuple(shape):
            raise ValueError(f'{source}: {key} has shape {tuple(converted[key].shape)}, '
                             f'VGG-19 needs {tuple(shape)}; is this really VGG-19?')
    return converted


def _key_order(key):
    """Sort ``features.N.x`` keys by N."""
    parts = key.split('.')
    return (int(parts[1]) if parts[1].isdigit() else 0, key)


def load_torch_file(path, what, how_to_make):
    """``torch.load`` a trusted local file with a clear error when it is missing.

    Args:
        path (str): File path.
        what (str): What the file is, for messages.
        how_to_make (str): How to create the file, for the missing-file message.

    Returns:
        object: The loaded object (tensors and plain containers only).
    """
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path!r}. {how_to_make}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as err:
        raise RuntimeError(f'Could not load {what} from {path!r} with weights_only=True '
                           f'({err}). Save a plain state dict (tensors and plain '
                           'containers only).') from err


VGG_HOW_TO = ('Put ImageNet VGG-19 weights there: a torchvision vgg19 state dict '
              '(e.g. vgg19-dcbb9e9d.pth) or an mmcv.cnn.VGG(depth=19) state dict; they are '
              'converted on load (npdg.perturbation.vgg.convert_vgg19_state_dict). For a '
              'smoke test only, tools/train_dsp.py --random-vgg writes vgg_random.pth.')


def load_vgg_encoder(path):
    """Build a :class:`VGGEncoder` and load VGG-19 weights from ``path``.

    Args:
        path (str): Local torchvision/mmcv VGG-19 weight file.

    Returns:
        VGGEncoder: The encoder with loaded weights.
    """
    state = convert_vgg19_state_dict(load_torch_file(path, 'VGG-19 weights', VGG_HOW_TO),
                                     source=path)
    encoder = VGGEncoder()
    encoder.features.load_state_dict(
        {k[len('features.'):]: v for k, v in state.items()}, strict=True)
    return encoder


def save_vgg_encoder(encoder, path):
    """Save an encoder's weights with torchvision's key names, all or nothing.

    The file is written to a temporary file beside ``path``, fsynced and
    renamed over it (:func:`npdg.utils.checkpoint_io.atomic_write`): a kill or
    an error mid-save leaves the previous file (or none), never a partial one.

    Args:
        encoder (VGGEncoder): The encoder.
        path (str): Destination file.
    """
    state = {f'features.{k}': v.detach().cpu().clone()
             for k, v in encoder.features.state_dict().items()}
    with atomic_write(path) as f:
        torch.save(state, f)


__all__ = ['VGGEncoder', 'convert_vgg19_state_dict', 'load_vgg_encoder',
           'save_vgg_encoder', 'STYLE_LAYER_NAMES']
