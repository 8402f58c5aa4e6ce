"""AdvStyle: the RGB image's own channel mean/std as a learnable style.

No pretrained network is needed, so this is npdg's CPU default. Each image
is standardised per channel by its own statistics and re-rendered with a new
per-channel (mean, std); random styles jitter the image's statistics, the
adversarial version then moves them up the segmentation loss (after Zhong et
al., "Adversarial Style Augmentation for Domain Generalized Urban-Scene
Segmentation", NeurIPS 2022).
"""
import math

from mmseg.registry import MODELS

from .base import StylePerturbation, normalized_step, randn, repeat_styles, sign_step

ASCENT_RULES = dict(sign=sign_step, normalized=normalized_step)


@MODELS.register_module()
class AdvStyle(StylePerturbation):
    """Per-image RGB channel statistics as a differentiable style.

    Images are RGB in [0, 255], float (B, 3, H, W); outputs too (clamped).
    The style of a rendering is, per channel, ``mean`` (in [0, 1] pixel
    units, i.e. gray level / 255) and ``log_std`` (log of the std in the same
    units); a rendering is ``255 * (z * exp(log_std) + mean)`` with ``z`` the
    image standardised by its own statistics.

    Random styles (:meth:`sample`, and the start of :meth:`perturb`):
    ``mean = mean_img + mean_jitter * N(0, 1)``,
    ``std = std_img * exp(std_jitter * N(0, 1))``, per channel.

    Ascent (:meth:`perturb`): ``ascent='sign'`` (default, FGSM-like, does not
    depend on the loss scale) adds ``step_size * sign(grad)`` to both
    ``mean`` and ``log_std``: step 0.1 shifts a channel by 25.5 gray levels
    and scales its contrast by ``e^0.1``; ``ascent='normalized'`` moves each
    style's 6-vector by ``step_size`` in L2 along its gradient. After each
    step ``mean`` is clamped to [0, 1] and ``std`` to [``min_std``, 0.5].

    Args:
        mean_jitter (float): Std of the random shift of the channel means,
            in [0, 1] units. Defaults to 0.1.
        std_jitter (float): Std of the random log-scale of the channel stds.
            Defaults to 0.2.
        step_size (float): Default ascent step. Defaults to 0.1.
        ascent (str): ``'sign'`` or ``'normalized'``. Defaults to ``'sign'``.
        min_std (float): Floor of a channel's std ([0, 1] units), also the
            epsilon of the standardisation. Defaults to 1e-3.
    """

    image_level = True

    def __init__(self, mean_jitter=0.1, std_jitter=0.2, step_size=0.1, ascent='sign',
                 min_std=1e-3):
        super().__init__(step_size)
        if ascent not in ASCENT_RULES:
            raise ValueError(f'AdvStyle ascent must be one of {sorted(ASCENT_RULES)}, '
                             f'got {ascent!r}.')
        if mean_jitter < 0 or std_jitter < 0 or min_std <= 0:
            raise ValueError('AdvStyle needs mean_jitter >= 0, std_jitter >= 0, min_std > 0.')
        self.mean_jitter = float(mean_jitter)
        self.std_jitter = float(std_jitter)
        self.ascent = ascent
        self.min_std = float(min_std)

    def prepare(self, images):
        """Standardise each image per channel by its own statistics.

        Args:
            images (torch.Tensor): RGB images in [0, 255], (B, 3, H, W).

        Returns:
            dict: ``content`` (standardised images), ``mean`` and ``log_std``
            (B, 3, 1, 1) of the images in [0, 1] units.
        """
        x = images / 255.0
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
        std = (var + self.min_std ** 2).sqrt()
        return dict(content=(x - mean) / std, mean=mean, log_std=std.log())

    def init_style(self, context, num_styles, generator=None):
        """Jitter each image's statistics ``num_styles`` times.

        Args:
            context (dict): From :meth:`prepare`.
            num_styles (int): Styles per image.
            generator (torch.Generator, optional): Randomness source.

        Returns:
            tuple[torch.Tensor]: ``(mean, log_std)``, each (B * K, 3, 1, 1).
        """
        mean = repeat_styles(context['mean'], num_styles)
        log_std = repeat_styles(context['log_std'], num_styles)
        noise = randn((2, *mean.shape), mean, generator)
        mean = mean + self.mean_jitter * noise[0]
        log_std = log_std + self.std_jitter * noise[1]
        return self._bound(mean, log_std)

    def render(self, context, style):
        """Re-render the standardised content with the given statistics.

        Args:
            context (dict): From :meth:`prepare`.
            style (tuple[torch.Tensor]): ``(mean, log_std)``, B * K rows.

        Returns:
            torch.Tensor: (B * K, 3, H, W) images in pixel units (unclamped).
        """
        mean, log_std = style
        content = context['content']
        content = repeat_styles(content, mean.shape[0] // content.shape[0])
        return 255.0 * (content * log_std.exp() + mean)

    def ascent_step(self, style, grads, step_size):
        """Move ``(mean, log_std)`` up the gradient, then keep them in range."""
        mean, log_std = ASCENT_RULES[self.ascent](style, grads, step_size)
        return self._bound(mean, log_std)

    def _bound(self, mean, log_std):
        """Clamp means to [0, 1] and stds to [min_std, 0.5] ([0, 1] units)."""
        return mean.clamp(0.0, 1.0), log_std.clamp(math.log(self.min_std), math.log(0.5))

    def extra_repr(self):
        return (f'mean_jitter={self.mean_jitter}, std_jitter={self.std_jitter}, '
                f'step_size={self.step_size}, ascent={self.ascent!r}')


__all__ = ['AdvStyle']
