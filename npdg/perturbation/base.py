"""Interface shared by npdg's style perturbations, plus image-space helpers.

Registry: every perturbation is registered directly in mmseg's ``MODELS``
registry under a distinct name (``'AdvStyle'``, ``'DSUNoise'``, ``'DSP'``), so
an mmseg-scoped config builds one with ``MODELS.build(dict(type='AdvStyle'))``
or :func:`build_perturbation`, which also checks the result's type.

Image space: image-level perturbations (``image_level = True``) read and
write **un-normalised RGB images, float tensors in [0, 255], shape
(B, 3, H, W)**. mmseg's data preprocessor hands the model normalised tensors,
so a caller first undoes that with :func:`denormalize` and redoes it with
:func:`normalize` (the two invert each other, channel order included).

Style rows are ordered image-major: with ``K`` styles per image the output
rows are ``b0s0, b0s1, ..., b0s(K-1), b1s0, ...``, so ``out.view(B, K, ...)``
groups the renderings of one content image, and labels follow with
``labels.repeat_interleave(K, dim=0)``.
"""
import torch
from mmseg.registry import MODELS
from torch import nn

IMAGE_RANGE = (0.0, 255.0)


def _channel_tensor(values, like, name):
    """Turn per-channel values into a (1, C, 1, 1) tensor matching ``like``.

    Args:
        values (Sequence[float] | torch.Tensor): One value per channel.
        like (torch.Tensor): A (B, C, H, W) tensor giving dtype, device and C.
        name (str): Argument name, for the error message.

    Returns:
        torch.Tensor: Shape (1, C, 1, 1).
    """
    out = torch.as_tensor(values, dtype=like.dtype, device=like.device).reshape(1, -1, 1, 1)
    if out.shape[1] != like.shape[1]:
        raise ValueError(f'{name} has {out.shape[1]} values but the images have '
                         f'{like.shape[1]} channels; give one value per channel.')
    return out


def _check_images(images, name='images'):
    """Raise a clear error unless ``images`` is a float (B, C, H, W) tensor."""
    if not torch.is_tensor(images) or images.dim() != 4:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f'{name} must be a (B, C, H, W) tensor, got {shape}.')
    if not images.is_floating_point():
        raise TypeError(f'{name} must be a float tensor, got {images.dtype}; '
                        'convert with .float() first.')


def denormalize(inputs, mean, std, bgr_to_rgb=True):
    """Undo mmseg's data-preprocessor normalisation: normalised -> RGB [0, 255].

    mmseg's ``SegDataPreProcessor`` flips BGR to RGB (when ``bgr_to_rgb``),
    then computes ``(x - mean) / std`` with ``mean``/``std`` given in the
    order of the flipped tensor. This returns ``x * std + mean`` and, when the
    preprocessor did not flip (``bgr_to_rgb=False``, the tensor keeps the
    loader's BGR order, cv2's default), flips it to RGB. Values are not
    clamped (padding may sit outside [0, 255]).

    Args:
        inputs (torch.Tensor): Normalised images, (B, 3, H, W), float.
        mean (Sequence[float] | torch.Tensor | None): The preprocessor's mean;
            ``None`` when it does not normalise.
        std (Sequence[float] | torch.Tensor | None): Its std; ``None`` with
            ``mean=None``.
        bgr_to_rgb (bool): The preprocessor's ``bgr_to_rgb`` flag, i.e.
            whether ``inputs`` are already in RGB order.

    Returns:
        torch.Tensor: RGB images in pixel units, same shape as ``inputs``.
    """
    _check_images(inputs, 'inputs')
    out = inputs
    if mean is not None:
        out = inputs * _channel_tensor(std, inputs, 'std') + _channel_tensor(mean, inputs, 'mean')
    if not bgr_to_rgb:
        out = out.flip(1)
    return out


def normalize(images, mean, std, bgr_to_rgb=True):
    """Redo mmseg's data-preprocessor normalisation: RGB [0, 255] -> normalised.

    Exact inverse of :func:`denormalize` with the same arguments (up to float
    rounding).

    Args:
        images (torch.Tensor): RGB images in pixel units, (B, 3, H, W).
        mean (Sequence[float] | torch.Tensor | None): The preprocessor's mean.
        std (Sequence[float] | torch.Tensor | None): The preprocessor's std.
        bgr_to_rgb (bool): The preprocessor's ``bgr_to_rgb`` flag; when False
            the result is put back in BGR order.

    Returns:
        torch.Tensor: Normalised images as the segmentor expects them.
    """
    _check_images(images)
    out = images if bgr_to_rgb else images.flip(1)
    if mean is not None:
        out = (out - _channel_tensor(mean, out, 'mean')) / _channel_tensor(std, out, 'std')
    return out


def norm_args_from_preprocessor(data_preprocessor):
    """Read ``mean``, ``std`` and ``bgr_to_rgb`` off an mmseg data preprocessor.

    ``SegDataPreProcessor`` keeps only ``channel_conversion`` (either flip),
    so this assumes the usual cv2 loading (BGR): a conversion means the
    tensor is RGB.

    Args:
        data_preprocessor (nn.Module): The segmentor's ``data_preprocessor``.

    Returns:
        dict: ``mean``, ``std`` (flat tensors or ``None``) and ``bgr_to_rgb``,
        ready for ``denormalize(inputs, **args)``.
    """
    if getattr(data_preprocessor, '_enable_normalize', False):
        mean = data_preprocessor.mean.detach().flatten()
        std = data_preprocessor.std.detach().flatten()
    else:
        mean = std = None
    return dict(mean=mean, std=std,
                bgr_to_rgb=bool(getattr(data_preprocessor, 'channel_conversion', False)))


def randn(shape, like, generator=None):
    """Draw standard normals on ``generator``'s device, then move them to ``like``.

    Args:
        shape (tuple[int]): Shape to draw.
        like (torch.Tensor): Gives the result's dtype and device.
        generator (torch.Generator, optional): Source of randomness; the
            global generator of ``like``'s device when ``None``.

    Returns:
        torch.Tensor: Standard normal samples.
    """
    device = generator.device if generator is not None else like.device
    draw = torch.randn(shape, generator=generator, device=device)
    return draw.to(device=like.device, dtype=like.dtype)


def repeat_styles(x, num_styles):
    """Repeat each row ``num_styles`` times, image-major (b0, b0, ..., b1, ...).

    Args:
        x (torch.Tensor): Tensor with the batch in dimension 0.
        num_styles (int): Repeats per row.

    Returns:
        torch.Tensor: ``x.repeat_interleave(num_styles, dim=0)``.
    """
    return x if num_styles == 1 else x.repeat_interleave(num_styles, dim=0)


def rowwise_norm(x, eps=1e-12):
    """L2 norm of each row of ``x`` over all but dim 0, shaped to broadcast.

    Args:
        x (torch.Tensor): Tensor with rows in dimension 0.
        eps (float): Floor that avoids division by zero.

    Returns:
        torch.Tensor: Shape (N, 1, ..., 1).
    """
    norm = x.flatten(1).norm(dim=1).clamp_min(eps)
    return norm.view(-1, *([1] * (x.dim() - 1)))


def sign_step(values, grads, step_size):
    """One FGSM-style ascent step per tensor: ``v + step * sign(g)``.

    Args:
        values (tuple[torch.Tensor]): Style variables.
        grads (tuple[torch.Tensor]): Their gradients.
        step_size (float): Step length per coordinate.

    Returns:
        tuple[torch.Tensor]: Updated variables.
    """
    return tuple(v + step_size * g.sign() for v, g in zip(values, grads))


def normalized_step(values, grads, step_size):
    """One ascent step along the gradient normalised per row (per style).

    The norm of each row is taken jointly over all style tensors, so a
    style's whole parameter vector moves by ``step_size`` in L2.

    Args:
        values (tuple[torch.Tensor]): Style variables, rows in dim 0.
        grads (tuple[torch.Tensor]): Their gradients.
        step_size (float): L2 length of each row's step.

    Returns:
        tuple[torch.Tensor]: Updated variables.
    """
    flat = torch.cat([g.flatten(1) for g in grads], dim=1)
    norm = flat.norm(dim=1).clamp_min(1e-12)
    return tuple(v + step_size * g / norm.view(-1, *([1] * (g.dim() - 1)))
                 for v, g in zip(values, grads))


def build_perturbation(cfg):
    """Build a perturbation from a config dict via mmseg's ``MODELS``.

    Args:
        cfg (dict | StylePerturbation): E.g. ``dict(type='AdvStyle')``; a
            built perturbation is returned unchanged.

    Returns:
        StylePerturbation: The perturbation.
    """
    if isinstance(cfg, StylePerturbation):
        return cfg
    module = MODELS.build(cfg)
    if not isinstance(module, StylePerturbation):
        raise TypeError(f'{cfg.get("type")!r} built a {type(module).__name__}, which is not a '
                        'style perturbation; use AdvStyle, DSUNoise or DSP.')
    return module


class StylePerturbation(nn.Module):
    """Base class: a differentiable style re-rendering with adversarial ascent.

    Subclasses describe one style model through four methods:

    - ``prepare(images)`` -> context: what does not depend on the style
      (content, image statistics); computed once per call;
    - ``init_style(context, num_styles, generator)`` -> tuple of tensors: the
      style variables, ``B * K`` rows, image-major;
    - ``render(context, style)`` -> images of the ``B * K`` styles
      (differentiable in ``style``);
    - ``ascent_step(style, grads, step_size)`` -> updated style tuple.

    Image-level perturbations (``image_level = True``) take and return RGB
    images in [0, 255], float (B, 3, H, W); their outputs are clamped to
    that range. Feature-level ones (``image_level = False``) take feature
    maps and are not clamped.

    Args:
        step_size (float): Default ascent step of :meth:`perturb`.
    """

    image_level = True
    clamp_range = IMAGE_RANGE

    def __init__(self, step_size):
        super().__init__()
        self.step_size = float(step_size)
        self.last_style = None

    # -- what a subclass provides -------------------------------------------------
    def prepare(self, images):
        """Compute the style-independent context of ``images``."""
        raise NotImplementedError

    def init_style(self, context, num_styles, generator=None):
        """Draw ``num_styles`` style variables per image (tuple of tensors)."""
        raise NotImplementedError

    def render(self, context, style):
        """Render the content of ``context`` in ``style`` (unclamped)."""
        raise NotImplementedError

    def ascent_step(self, style, grads, step_size):
        """Move ``style`` up the loss gradient ``grads`` (tuple of tensors)."""
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------
    def sample(self, images, num_styles=1, generator=None, return_style=False):
        """Render every image in ``num_styles`` random styles.

        The result is differentiable with respect to ``images`` and, with
        ``return_style=True``, to the returned style variables (leaf tensors
        with ``requires_grad=True``); wrap the call in ``torch.no_grad()``
        when only the renderings are needed.

        Args:
            images (torch.Tensor): (B, C, H, W); RGB in [0, 255] for
                image-level perturbations, feature maps otherwise.
            num_styles (int): Styles per image, K.
            generator (torch.Generator, optional): Randomness source, for
                reproducible draws.
            return_style (bool): Also return the style tuple.

        Returns:
            torch.Tensor | tuple: (B * K, C, H, W) renderings, image-major;
            with ``return_style`` a pair ``(renderings, style)``.
        """
        _check_images(images)
        _check_num_styles(num_styles)
        context = self.prepare(images)
        style = self.init_style(context, num_styles, generator)
        if return_style:
            style = tuple(v.detach().requires_grad_(True) for v in style)
        out = self._clamp(self.render(context, style))
        return (out, style) if return_style else out

    def sample_domain(self, images, generator=None):
        """Render every image in one shared random style: a consistent pseudo-domain.

        One style is drawn (for the first image) and applied to the whole batch,
        so the same ``generator`` seed gives the same domain for any batch.

        Args:
            images (torch.Tensor): (B, C, H, W), as for :meth:`sample`.
            generator (torch.Generator, optional): Randomness source of the draw.

        Returns:
            torch.Tensor: (B, C, H, W) renderings (clamped like :meth:`sample`).
        """
        _check_images(images)
        context = self.prepare(images)
        style = self.init_style(context, 1, generator)
        batch = images.shape[0]
        style = tuple(v[:1].expand_as(v).contiguous()
                      if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == batch else v
                      for v in style)
        return self._clamp(self.render(context, style))

    def perturb(self, images, loss_fn, steps=1, step_size=None, num_styles=1,
                generator=None):
        """Adversarial styles: random styles pushed up ``loss_fn`` by gradient ascent.

        Draws styles as :meth:`sample` does, then ``steps`` times renders,
        evaluates ``loss_fn(renderings)`` and moves **only the style
        variables** up its gradient. Gradients are taken with
        ``torch.autograd.grad`` with respect to the style variables alone, so
        nothing accumulates in the ``.grad`` of the segmentor (or of this
        module, whose weights are not moved); a step whose gradient is not
        finite (float16 overflow of a scaled loss) leaves the style where it
        is. ``loss_fn`` runs in grad mode
        even when the caller is in ``no_grad``. Notes for the caller:
        ``loss_fn`` running the segmentor in train mode updates BN running
        statistics, and a DDP-wrapped model must not be called inside
        ``loss_fn`` (call its ``.module``): DDP expects a ``backward()``.

        Args:
            images (torch.Tensor): (B, C, H, W), as for :meth:`sample`.
            loss_fn (Callable[[torch.Tensor], torch.Tensor]): Maps the
                (B * K, C, H, W) renderings to a scalar loss (labels must be
                repeated image-major, ``repeat_interleave(K, 0)``).
            steps (int): Ascent steps; 0 returns the random styles.
            step_size (float, optional): Step length (meaning per subclass);
                the module's ``step_size`` when ``None``.
            num_styles (int): Styles per image, K.
            generator (torch.Generator, optional): Randomness source of the
                initial styles.

        Returns:
            torch.Tensor: (B * K, C, H, W) renderings in the final styles,
            detached (and clamped to [0, 255] for image-level ones). The
            final style variables stay in ``self.last_style`` (for logging).
        """
        _check_images(images)
        _check_num_styles(num_styles)
        if int(steps) != steps or steps < 0:
            raise ValueError(f'steps must be a non-negative integer, got {steps!r}.')
        step_size = self.step_size if step_size is None else float(step_size)
        with torch.no_grad():
            context = self.prepare(images.detach())
            style = tuple(v.detach() for v in self.init_style(context, num_styles, generator))
        for _ in range(int(steps)):
            style = self._ascend_once(context, style, loss_fn, step_size)
        self.last_style = style
        with torch.no_grad():
            out = self._clamp(self.render(context, style))
        return out.detach()

    def _ascend_once(self, context, style, loss_fn, step_size):
        """One render / loss / gradient / step cycle on the style variables."""
        with torch.enable_grad():
            leaves = tuple(v.detach().requires_grad_(True) for v in style)
            loss = loss_fn(self._clamp(self.render(context, leaves)))
            if not torch.is_tensor(loss) or loss.numel() != 1:
                raise ValueError('loss_fn must return a scalar tensor, got '
                                 f'{getattr(loss, "shape", type(loss).__name__)}.')
            if not loss.requires_grad:
                raise RuntimeError('loss_fn returned a loss that does not depend on the '
                                   'perturbed images (no gradient to ascend); make sure it '
                                   'is computed from its argument with autograd enabled.')
            grads = torch.autograd.grad(loss.reshape(()), leaves, allow_unused=True)
        grads = tuple(torch.zeros_like(v) if g is None else g for v, g in zip(leaves, grads))
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            # float16 overflow under a loss scale: no step (as GradScaler skips one)
            grads = tuple(torch.zeros_like(v) for v in leaves)
        with torch.no_grad():
            return tuple(v.detach() for v in self.ascent_step(leaves, grads, step_size))

    def _clamp(self, out):
        """Clamp to ``clamp_range`` when the perturbation has one."""
        if self.clamp_range is None:
            return out
        return out.clamp(*self.clamp_range)

    def forward(self, images, num_styles=1, generator=None):
        """Alias of :meth:`sample`."""
        return self.sample(images, num_styles=num_styles, generator=generator)


def _check_num_styles(num_styles):
    """Raise unless ``num_styles`` is a positive integer."""
    if int(num_styles) != num_styles or num_styles < 1:
        raise ValueError(f'num_styles must be a positive integer, got {num_styles!r}.')
