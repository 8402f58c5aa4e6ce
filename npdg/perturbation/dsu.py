"""DSU-like feature-statistics noise (after Li et al., "Uncertainty Modeling
for Out-of-Distribution Generalization", ICLR 2022).

Each sample's per-channel feature mean and std are redrawn from Gaussians
centred on them, with the spread of those statistics across the batch as the
standard deviation ("batch uncertainty").
"""
import torch
from mmseg.registry import MODELS

from .base import StylePerturbation, normalized_step, randn, repeat_styles


@MODELS.register_module()
class DSUNoise(StylePerturbation):
    """Resample channel statistics of feature maps with batch-level uncertainty.

    For features ``x`` (B, C, H, W) with per-sample channel mean ``mu`` and
    std ``sig`` (over H, W), the batch uncertainties are
    ``Sigma_mu = sqrt(Var_b(mu) + eps)`` and ``Sigma_sig = sqrt(Var_b(sig) + eps)``
    (population variance over the batch; a batch of one gives almost no
    noise). A rendering is
    ``(x - mu) / sig * (sig + e_sig * Sigma_sig) + (mu + e_mu * Sigma_mu)``,
    with ``e_mu, e_sig ~ N(0, 1)`` per sample and channel; the style variables
    are ``(e_mu, e_sig)``.

    - ``forward(x)``: in training mode, with probability ``p``, one such draw
      (the layer used inside a network; gradients flow to ``x``); otherwise
      ``x`` unchanged. Eval mode is the identity.
    - ``sample(x, num_styles)``: K draws per sample, (B * K, C, H, W),
      image-major, for the sensitivity statistics.
    - ``perturb(x, loss_fn)``: adversarial draws; each row's ``(e_mu, e_sig)``
      moves by ``step_size`` (L2) along its normalised gradient.

    Feature level: ``image_level = False``, nothing is clamped. Use
    :func:`attach_dsu` to put it after a backbone stage.

    Args:
        p (float): Probability of perturbing a batch in training. Defaults to 0.5.
        eps (float): Variance floor. Defaults to 1e-6.
        noise_scale (float): Multiplies the uncertainties. Defaults to 1.0.
        step_size (float): Default ascent step (L2 per row). Defaults to 1.0.
    """

    image_level = False
    clamp_range = None

    def __init__(self, p=0.5, eps=1e-6, noise_scale=1.0, step_size=1.0):
        super().__init__(step_size)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f'DSUNoise p must lie in [0, 1], got {p}.')
        self.p = float(p)
        self.eps = float(eps)
        self.noise_scale = float(noise_scale)

    def prepare(self, features):
        """Per-sample statistics, standardised features and batch uncertainties.

        Args:
            features (torch.Tensor): (B, C, H, W) feature maps.

        Returns:
            dict: ``normed``, ``mu``, ``sig`` (B, C, 1, 1) and ``sigma_mu``,
            ``sigma_sig`` (1, C, 1, 1).
        """
        mu = features.mean(dim=(2, 3), keepdim=True)
        sig = (features.var(dim=(2, 3), keepdim=True, unbiased=False) + self.eps).sqrt()
        sigma_mu = (mu.var(dim=0, keepdim=True, unbiased=False) + self.eps).sqrt()
        sigma_sig = (sig.var(dim=0, keepdim=True, unbiased=False) + self.eps).sqrt()
        return dict(normed=(features - mu) / sig, mu=mu, sig=sig,
                    sigma_mu=self.noise_scale * sigma_mu,
                    sigma_sig=self.noise_scale * sigma_sig)

    def init_style(self, context, num_styles, generator=None):
        """Draw standard normal ``(e_mu, e_sig)``, (B * K, C, 1, 1) each."""
        rows = context['mu'].shape[0] * num_styles
        noise = randn((2, rows, *context['mu'].shape[1:]), context['mu'], generator)
        return noise[0], noise[1]

    def render(self, context, style):
        """Apply the resampled statistics to the standardised features.

        Args:
            context (dict): From :meth:`prepare`.
            style (tuple[torch.Tensor]): ``(e_mu, e_sig)``, B * K rows.

        Returns:
            torch.Tensor: (B * K, C, H, W) features.
        """
        e_mu, e_sig = style
        k = e_mu.shape[0] // context['mu'].shape[0]
        beta = repeat_styles(context['mu'], k) + e_mu * context['sigma_mu']
        gamma = repeat_styles(context['sig'], k) + e_sig * context['sigma_sig']
        return repeat_styles(context['normed'], k) * gamma + beta

    def ascent_step(self, style, grads, step_size):
        """Move each row's ``(e_mu, e_sig)`` by ``step_size`` along its gradient."""
        return normalized_step(style, grads, step_size)

    def forward(self, features):
        """Training-time layer: perturb with probability ``p``, identity otherwise.

        Args:
            features (torch.Tensor): (B, C, H, W).

        Returns:
            torch.Tensor: Same shape; ``features`` itself when not applied.
        """
        if not self.training or self.p == 0.0:
            return features
        if self.p < 1.0 and torch.rand(()).item() >= self.p:
            return features
        context = self.prepare(features)
        return self.render(context, self.init_style(context, 1))

    def extra_repr(self):
        return f'p={self.p}, eps={self.eps}, noise_scale={self.noise_scale}'


def _apply(dsu, output):
    """Apply ``dsu`` to a tensor or to every tensor of a tuple/list output."""
    if torch.is_tensor(output):
        return dsu(output)
    if isinstance(output, (tuple, list)):
        return type(output)(_apply(dsu, o) for o in output)
    raise TypeError(f'attach_dsu cannot perturb a {type(output).__name__} output; the '
                    'hooked module must return a tensor or a tuple/list of tensors.')


def attach_dsu(model, stage_name, p=0.5, dsu=None, **kwargs):
    """Perturb the output of ``model.<stage_name>`` with DSU noise in training.

    Registers a forward hook on the named submodule. The noise follows the
    **hooked submodule's** ``training`` flag (so ``model.train()`` /
    ``model.eval()`` switch it); the :class:`DSUNoise` itself is kept in
    training mode. Remove it with ``handle.remove()``.

    Args:
        model (nn.Module): E.g. the segmentor.
        stage_name (str): Dotted submodule name, e.g. ``'backbone.layer1'``.
        p (float): Probability of perturbing a batch. Defaults to 0.5.
        dsu (DSUNoise, optional): A configured module; built from ``p`` and
            ``kwargs`` when ``None``.
        **kwargs: Further :class:`DSUNoise` arguments.

    Returns:
        torch.utils.hooks.RemovableHandle: The hook's handle.
    """
    try:
        stage = model.get_submodule(stage_name)
    except AttributeError as err:
        raise ValueError(f'attach_dsu: the model has no submodule {stage_name!r} ({err}); '
                         'name one of model.named_modules(), e.g. "backbone.layer1".') from err
    dsu = DSUNoise(p=p, **kwargs) if dsu is None else dsu
    dsu.train()

    def hook(module, inputs, output):
        return _apply(dsu, output) if module.training else output

    return stage.register_forward_hook(hook)


__all__ = ['DSUNoise', 'attach_dsu']
