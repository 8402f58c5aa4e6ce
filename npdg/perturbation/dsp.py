"""DSP: NPDG's differentiable style perturbation (AdaIN + a VAE over style statistics).

Pipeline: frozen VGG-19 up to relu4_1 gives content features ``f_c``; a
latent ``eps`` goes through the style VAE's decoder to style statistics
(512 channel means + 512 channel stds of relu4_1); ``AdaIN(f_c, stats)`` goes
through the image decoder to an RGB image. During segmentation training the
latents are pushed up the segmentation loss; nothing else moves.

Weights come from two local files: VGG-19 weights (see
:mod:`npdg.perturbation.vgg`) and ``decoder.pth`` written by
``tools/train_dsp.py``, a dict of plain containers::

    {'decoder': state dict of AdaINDecoder,
     'style_vae': state dict of StyleVAE,
     'config': {'latent_dim': 512, 'hidden_dim': 1024, 'channels': 512,
                'random_vgg': bool, 'vgg_checkpoint': str, ...},
     'iteration': int, 'optimizer': ..., 'generator_state': ...}  # resume only
"""
import math
import warnings

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import nn

from .base import StylePerturbation, normalized_step, randn, repeat_styles
from .vgg import load_torch_file, load_vgg_encoder

STATS_EPS = 1e-5
DEFAULT_CONFIG = dict(channels=512, latent_dim=512, hidden_dim=1024)
DECODER_HOW_TO = ('Train one with: python tools/train_dsp.py --content-dir DIR '
                  '--style-dir DIR --vgg VGG19.pth --out OUT_DIR (writes OUT_DIR/decoder.pth).')


def channel_stats(features, eps=STATS_EPS):
    """Per-sample, per-channel mean and std over the spatial positions.

    Args:
        features (torch.Tensor): (N, C, H, W).
        eps (float): Variance floor.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(mean, std)``, each (N, C).
    """
    mean = features.mean(dim=(2, 3))
    std = (features.var(dim=(2, 3), unbiased=False) + eps).sqrt()
    return mean, std


def adain(content, mean, std, eps=STATS_EPS):
    """Adaptive instance normalisation: give ``content`` the statistics ``mean``/``std``.

    Args:
        content (torch.Tensor): (N, C, H, W) content features.
        mean (torch.Tensor): (N, C) target channel means.
        std (torch.Tensor): (N, C) target channel stds.
        eps (float): Variance floor of the content statistics.

    Returns:
        torch.Tensor: (N, C, H, W) restyled features.
    """
    c_mean, c_std = channel_stats(content, eps)
    normed = (content - c_mean[..., None, None]) / c_std[..., None, None]
    return normed * std[..., None, None] + mean[..., None, None]


class ReflectPad(nn.Module):
    """1-pixel reflection padding; replication on maps too small to reflect."""

    def forward(self, x):
        mode = 'reflect' if min(x.shape[-2:]) > 1 else 'replicate'
        return F.pad(x, (1, 1, 1, 1), mode=mode)


def _conv(in_ch, out_ch, relu=True):
    """3x3 conv with reflection padding (and ReLU)."""
    layers = [ReflectPad(), nn.Conv2d(in_ch, out_ch, kernel_size=3)]
    return layers + [nn.ReLU()] if relu else layers


class AdaINDecoder(nn.Module):
    """Image decoder mirroring VGG-19 up to relu4_1 (Huang & Belongie's AdaIN).

    relu4_1-shaped features (N, 512, h, w) -> RGB image in [0, 1] units
    (unbounded; callers scale by 255 and clamp), size (8h, 8w).
    """

    def __init__(self, channels=512):
        super().__init__()
        up = nn.Upsample(scale_factor=2, mode='nearest')
        self.layers = nn.Sequential(
            *_conv(channels, 256), up,
            *_conv(256, 256), *_conv(256, 256), *_conv(256, 256), *_conv(256, 128), up,
            *_conv(128, 128), *_conv(128, 64), up,
            *_conv(64, 64), *_conv(64, 3, relu=False))

    def forward(self, features):
        """Decode features to an image in [0, 1] units."""
        return self.layers(features)


class StyleVAE(nn.Module):
    """VAE over style statistics (channel means and stds of relu4_1).

    The encoder (used only when training DSP) reads ``(mean, log std)``
    (2C numbers) and gives ``mu``/``logvar`` of the latent; the decoder maps
    a latent to ``(mean, std)`` with ``std = softplus(.) + 1e-5 > 0``.

    Args:
        channels (int): C, channels of the style layer. Defaults to 512.
        latent_dim (int): Latent size. Defaults to 512.
        hidden_dim (int): Width of the hidden FC layers. Defaults to 1024.
    """

    def __init__(self, channels=512, latent_dim=512, hidden_dim=1024):
        super().__init__()
        self.channels = channels
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Linear(2 * channels, hidden_dim), nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim), nn.LeakyReLU(0.2))
        self.to_mu = nn.Linear(hidden_dim, latent_dim)
        self.to_logvar = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim), nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, 2 * channels))

    def encode(self, mean, std):
        """Style statistics (N, C) each -> ``(mu, logvar)``, (N, latent_dim) each."""
        hidden = self.encoder(torch.cat([mean, std.clamp_min(STATS_EPS).log()], dim=1))
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode(self, z):
        """Latents (N, latent_dim) -> ``(mean, std)``, (N, C) each, std > 0."""
        out = self.decoder(z)
        mean, raw_std = out.split(self.channels, dim=1)
        return mean, F.softplus(raw_std) + STATS_EPS

    def forward(self, mean, std, generator=None):
        """Encode, sample with the reparameterisation trick, decode.

        Args:
            mean (torch.Tensor): (N, C) channel means.
            std (torch.Tensor): (N, C) channel stds.
            generator (torch.Generator, optional): Randomness source.

        Returns:
            tuple: ``(rec_mean, rec_std, mu, logvar)``.
        """
        mu, logvar = self.encode(mean, std)
        z = mu + (0.5 * logvar).exp() * randn(mu.shape, mu, generator)
        rec_mean, rec_std = self.decode(z)
        return rec_mean, rec_std, mu, logvar


def build_dsp_networks(config):
    """Build the image decoder and the style VAE from a DSP config.

    Args:
        config (dict): ``channels``, ``latent_dim``, ``hidden_dim``.

    Returns:
        tuple[AdaINDecoder, StyleVAE]: Fresh networks.
    """
    cfg = {**DEFAULT_CONFIG, **config}
    return (AdaINDecoder(cfg['channels']),
            StyleVAE(cfg['channels'], cfg['latent_dim'], cfg['hidden_dim']))


def load_dsp_checkpoint(path):
    """Load and check a ``decoder.pth`` written by ``tools/train_dsp.py``.

    Args:
        path (str): Local file.

    Returns:
        dict: The checkpoint (``decoder``, ``style_vae``, ``config``, ...).
    """
    ckpt = load_torch_file(path, 'DSP decoder checkpoint', DECODER_HOW_TO)
    missing = [k for k in ('decoder', 'style_vae', 'config') if k not in ckpt]
    if missing:
        raise KeyError(f'{path}: not a DSP decoder checkpoint (missing {missing}). '
                       + DECODER_HOW_TO)
    return ckpt


@MODELS.register_module()
class DSP(StylePerturbation):
    """Differentiable style perturbation with a frozen AdaIN decoder and style VAE.

    Images in and out are RGB in [0, 255], float (B, 3, H, W) (outputs
    clamped); the ImageNet normalisation VGG needs is done inside. The style
    variables are latents ``eps`` (B * K, latent_dim), drawn from N(0, I)
    and kept within ``max_latent_norm``.

    Latent norm: with ``latent_norm='rms'`` (default) the norm is
    ``||eps||_2 / sqrt(latent_dim)``: N(0, I) draws have norm about 1 and the
    limit 3 allows three standard deviations per coordinate on average (an
    unscaled limit of 3 on a 512-d latent, whose N(0, I) draws have L2 norm
    about 22.6, would squeeze every style towards the mean style).
    ``latent_norm='l2'`` uses the plain L2 norm.

    Ascent: ``eps <- eps + step * g / ||g||_2`` per style row, then projection
    onto the norm ball; ``step = step_size * sqrt(latent_dim)`` in ``'rms'``
    mode (so ``step_size`` is in the same per-coordinate units as the limit),
    ``step_size`` in ``'l2'`` mode.

    All weights are frozen (``requires_grad=False``) and the module stays in
    eval mode (``train()`` is a no-op). The module follows the images to
    their device on first use. Keep it outside the segmentor (e.g. on a hook)
    so its weights are neither optimised, checkpointed nor pruned.

    Args:
        vgg_checkpoint (str): Local VGG-19 weights (torchvision or mmcv layout).
        decoder_checkpoint (str): ``decoder.pth`` from ``tools/train_dsp.py``.
        latent_dim (int, optional): Expected latent size; checked against the
            checkpoint (its value is used when ``None``).
        max_latent_norm (float): Norm limit of the latents. Defaults to 3.0.
        latent_norm (str): ``'rms'`` or ``'l2'``. Defaults to ``'rms'``.
        step_size (float): Default ascent step. Defaults to 1.0.
        style_strength (float): Blend of restyled and original content
            features, 1 = full style. Defaults to 1.0.
    """

    image_level = True

    def __init__(self, vgg_checkpoint, decoder_checkpoint, latent_dim=None,
                 max_latent_norm=3.0, latent_norm='rms', step_size=1.0, style_strength=1.0):
        super().__init__(step_size)
        if latent_norm not in ('rms', 'l2'):
            raise ValueError(f"DSP latent_norm must be 'rms' or 'l2', got {latent_norm!r}.")
        if max_latent_norm <= 0 or not 0.0 <= style_strength <= 1.0:
            raise ValueError('DSP needs max_latent_norm > 0 and 0 <= style_strength <= 1.')
        self.encoder = load_vgg_encoder(vgg_checkpoint)
        ckpt = load_dsp_checkpoint(decoder_checkpoint)
        config = {**DEFAULT_CONFIG, **ckpt['config']}
        if latent_dim is not None and int(latent_dim) != config['latent_dim']:
            raise ValueError(f'DSP latent_dim={latent_dim} but {decoder_checkpoint} was trained '
                             f"with latent_dim={config['latent_dim']}; drop the argument or "
                             'retrain.')
        self.decoder, self.vae = build_dsp_networks(config)
        self.decoder.load_state_dict(ckpt['decoder'], strict=True)
        self.vae.load_state_dict(ckpt['style_vae'], strict=True)
        if config.get('random_vgg', False):
            warnings.warn(f'{decoder_checkpoint} was trained with a RANDOM VGG '
                          '(--random-vgg): its styles are meaningless; smoke tests only.',
                          stacklevel=2)
        self.config = config
        self.latent_dim = config['latent_dim']
        self.max_latent_norm = float(max_latent_norm)
        self.latent_norm = latent_norm
        self.style_strength = float(style_strength)
        self._freeze()

    def _freeze(self):
        """Stop gradients to every weight and switch to eval mode."""
        for param in self.parameters():
            param.requires_grad_(False)
        super().train(False)

    def train(self, mode=True):
        """Stay in eval mode: DSP is frozen."""
        return super().train(False)

    def _follow(self, images):
        """Move the networks to the images' device on first use."""
        param = next(self.decoder.parameters())
        if param.device != images.device:
            self.to(images.device)

    def norm(self, eps):
        """Latent norm per row (``'rms'`` or ``'l2'``), shape (N,)."""
        norm = eps.flatten(1).norm(dim=1)
        return norm / math.sqrt(eps[0].numel()) if self.latent_norm == 'rms' else norm

    def project(self, eps):
        """Scale rows whose norm exceeds ``max_latent_norm`` back onto the limit."""
        scale = (self.max_latent_norm / self.norm(eps).clamp_min(1e-12)).clamp(max=1.0)
        return eps * scale[:, None]

    def prepare(self, images):
        """Encode the content images to relu4_1 features.

        Args:
            images (torch.Tensor): RGB in [0, 255], (B, 3, H, W).

        Returns:
            dict: ``content`` features (B, 512, H/8, W/8) and ``size`` (H, W).
        """
        if min(images.shape[-2:]) < 8:
            raise ValueError(f'DSP needs images of at least 8x8 pixels (VGG relu4_1 is at '
                             f'1/8 resolution), got {tuple(images.shape[-2:])}.')
        self._follow(images)
        return dict(content=self.encoder(images), size=tuple(images.shape[-2:]))

    def init_style(self, context, num_styles, generator=None):
        """Draw ``eps ~ N(0, I)`` (projected), (B * K, latent_dim)."""
        rows = context['content'].shape[0] * num_styles
        return (self.project(randn((rows, self.latent_dim), context['content'], generator)),)

    def render(self, context, style):
        """Decode latents to styles and restyle the content.

        Args:
            context (dict): From :meth:`prepare`.
            style (tuple[torch.Tensor]): ``(eps,)``, B * K rows.

        Returns:
            torch.Tensor: (B * K, 3, H, W) images in pixel units (unclamped).
        """
        (eps,) = style
        content = context['content']
        content = repeat_styles(content, eps.shape[0] // content.shape[0])
        mean, std = self.vae.decode(eps)
        feats = adain(content, mean, std)
        if self.style_strength < 1.0:
            feats = self.style_strength * feats + (1.0 - self.style_strength) * content
        images = self.decoder(feats) * 255.0
        if tuple(images.shape[-2:]) != context['size']:
            images = F.interpolate(images, size=context['size'], mode='bilinear',
                                   align_corners=False)
        return images

    def ascent_step(self, style, grads, step_size):
        """Normalised gradient step on ``eps``, then projection onto the norm ball."""
        if self.latent_norm == 'rms':
            step_size = step_size * math.sqrt(self.latent_dim)
        (eps,) = normalized_step(style, grads, step_size)
        return (self.project(eps),)

    def extra_repr(self):
        return (f'latent_dim={self.latent_dim}, max_latent_norm={self.max_latent_norm}, '
                f'latent_norm={self.latent_norm!r}, step_size={self.step_size}, '
                f'style_strength={self.style_strength}')


__all__ = ['DSP', 'AdaINDecoder', 'StyleVAE', 'adain', 'channel_stats',
           'build_dsp_networks', 'load_dsp_checkpoint']
