"""Differentiable style perturbations (registered in mmseg's ``MODELS``).

- :class:`AdvStyle` (``type='AdvStyle'``): RGB channel mean/std of each image
  as a learnable style; no pretrained network (CPU default).
- :class:`DSUNoise` (``type='DSUNoise'``): feature-statistics noise with batch
  uncertainty (feature level); :func:`attach_dsu` hooks it after a stage.
- :class:`DSP` (``type='DSP'``): NPDG's AdaIN + style-VAE perturbation; needs
  local VGG-19 weights and a ``decoder.pth`` from ``tools/train_dsp.py``.

Image-level perturbations work on RGB images in [0, 255]; use
:func:`denormalize` / :func:`normalize` around them. Training of DSP lives in
:mod:`npdg.perturbation.dsp_training` (not imported here).
"""
from .adv_style import AdvStyle
from .base import StylePerturbation, build_perturbation, denormalize, norm_args_from_preprocessor, normalize
from .dsp import DSP, AdaINDecoder, StyleVAE, adain, channel_stats
from .dsu import DSUNoise, attach_dsu
from .vgg import VGGEncoder, convert_vgg19_state_dict

__all__ = [
    'StylePerturbation', 'build_perturbation', 'denormalize', 'normalize',
    'norm_args_from_preprocessor', 'AdvStyle', 'DSUNoise', 'attach_dsu', 'DSP',
    'AdaINDecoder', 'StyleVAE', 'adain', 'channel_stats', 'VGGEncoder',
    'convert_vgg19_state_dict'
]
