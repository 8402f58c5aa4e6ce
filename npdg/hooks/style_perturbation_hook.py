"""Put a differentiable style perturbation in front of the segmentor in training."""
import torch
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from npdg.amp import loss_scale, training_autocast
from npdg.analysis.inference_path import unwrap_model as _bare
from npdg.engine import NpdgHook
from npdg.engine.run_state import run_state
from npdg.perturbation import build_perturbation, denormalize, normalize
from npdg.perturbation.base import norm_args_from_preprocessor
from npdg.perturbation.dsu import attach_dsu
from npdg.utils.batchnorm import bn_eval, frozen_bn_stats

KNOWN_PERTURBATIONS = ('AdvStyle', 'DSP', 'DSUNoise')


def _autocast_dtype(device_type):
    """The autocast dtype in force on ``device_type`` (None when autocast is off)."""
    if not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


@HOOKS.register_module()
class StylePerturbationHook(NpdgHook):
    """Train on adversarially re-styled source images (and clean ones).

    Image-level perturbations (``AdvStyle``, ``DSP``) act **before
    normalisation**: in ``before_train_iter`` the chosen images of the raw
    batch (BGR, pixel units, as loaded) are put through the data
    preprocessor, mapped back to RGB in [0, 255], re-styled with
    ``ascent_steps`` steps of gradient ascent on the segmentation loss (only
    the style variables move; BN running statistics are left untouched), and
    written back into the batch as BGR pixels, which the preprocessor then
    normalises as usual. ``mode='replace'`` swaps a fraction
    ``stylized_ratio`` of the batch for its stylised version (same cost);
    ``mode='append'`` adds the stylised copies (batch grows).
    Feature-level ``DSUNoise`` is attached to ``feature_stage`` instead.

    Under mixed precision (``tools/train.py --amp``) the segmentor's forward
    in the ascent runs under the training step's autocast (float16 on CUDA,
    bfloat16 on the CPU; ``autocast_dtype`` records the last one), the style
    rendering stays float32, and the loss is multiplied by the AMP loss
    scale before its gradient is taken.

    An image-level perturbation is published as the run's
    ``run_state(runner).perturbation``: the statistics hook and the pruning
    criteria render their styles with it.

    Args:
        perturbation (dict): Config of the perturbation, e.g.
            ``dict(type='AdvStyle')`` (CPU default, no pretrained network),
            ``dict(type='DSP', vgg_checkpoint=..., decoder_checkpoint=...)``
            or ``dict(type='DSUNoise', p=0.5)``.
        stylized_ratio (float): Fraction of each batch that is stylised, in
            (0, 1]. Defaults to 0.5 (half clean, half stylised).
        mode (str): ``'replace'`` or ``'append'``.
        ascent_steps (int): Gradient-ascent steps on the style (0: random
            styles only).
        step_size (float, optional): Ascent step; the perturbation's default
            when None.
        begin (int): First iteration (0-based) to perturb.
        end (int, optional): Iteration to stop perturbing at (exclusive).
        feature_stage (str): Submodule whose output DSU perturbs.
        seed (int, optional): Seed of the style draws (per iteration, resume-safe).
            None (default): the run's seed (``randomness.seed``), so runs with
            different seeds draw different styles.
        priority (str): Hook priority.
    """

    def __init__(self, perturbation=dict(type='AdvStyle'), stylized_ratio=0.5,
                 mode='replace', ascent_steps=1, step_size=None, begin=0, end=None,
                 feature_stage='backbone.layer1', seed=None, priority='ABOVE_NORMAL'):
        if not isinstance(perturbation, dict) or perturbation.get('type') not in \
                KNOWN_PERTURBATIONS:
            name = perturbation.get('type') if isinstance(perturbation, dict) else perturbation
            raise KeyError(f'StylePerturbationHook: unknown perturbation {name!r}; '
                           f'choose one of {KNOWN_PERTURBATIONS}.')
        if not 0 < stylized_ratio <= 1:
            raise ValueError(f'StylePerturbationHook: stylized_ratio must be in (0, 1], '
                             f'got {stylized_ratio!r}.')
        if mode not in ('replace', 'append'):
            raise ValueError(f"StylePerturbationHook: mode must be 'replace' or 'append', "
                             f'got {mode!r}.')
        if int(ascent_steps) < 0:
            raise ValueError('StylePerturbationHook: ascent_steps must be >= 0.')
        self.perturbation = build_perturbation(perturbation)
        self.stylized_ratio = float(stylized_ratio)
        self.mode = mode
        self.ascent_steps = int(ascent_steps)
        self.step_size = step_size
        self.begin, self.end = int(begin), end
        self.feature_stage = feature_stage
        self.seed = None if seed is None else int(seed)
        self.priority = priority
        self._dsu_handle = None
        self.autocast_dtype = None  # precision of the last ascent's forward (None: float32)
        self._amp_logged = False

    @property
    def image_level(self):
        """Whether the perturbation acts on images (True) or features."""
        return bool(self.perturbation.image_level)

    def before_run(self, runner):
        """Publish an image-level perturbation; attach a feature-level one.

        Args:
            runner (Runner): The runner.
        """
        super().before_run(runner)
        if self.seed is None:
            self.seed = int(getattr(runner, 'seed', 0) or 0)
        if self.image_level:
            run_state(runner).perturbation = self.perturbation
        if not self.image_level and self._dsu_handle is None:
            self._dsu_handle = attach_dsu(_bare(runner.model), self.feature_stage,
                                          dsu=self.perturbation)
            print_log(f'[npdg] DSU feature-statistics noise on {self.feature_stage}',
                      logger='current')

    def after_run(self, runner):
        """Detach the feature-level perturbation.

        Args:
            runner (Runner): The runner.
        """
        if self._dsu_handle is not None:
            self._dsu_handle.remove()
            self._dsu_handle = None

    def active(self, iteration):
        """Whether iteration ``iteration`` (0-based) is perturbed.

        Args:
            iteration (int): Iteration index.

        Returns:
            bool: True inside [begin, end).
        """
        return iteration >= self.begin and (self.end is None or iteration < self.end)

    def generator(self, iteration, salt=0):
        """A CPU generator seeded by iteration (same on every rank and resume).

        Args:
            iteration (int): Iteration index.
            salt (int): Distinguishes several uses within one iteration.

        Returns:
            torch.Generator: The generator.
        """
        return torch.Generator().manual_seed((self.seed or 0) * 1000003 + iteration * 31 + salt)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        """Re-style part of the batch in place.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Iteration index.
            data_batch (dict): ``inputs`` (list of BGR pixel tensors) and
                ``data_samples``; modified in place.
        """
        if not self.image_level or data_batch is None or not self.active(runner.iter):
            return
        inputs, samples = data_batch['inputs'], data_batch['data_samples']
        count = max(1, int(round(self.stylized_ratio * len(inputs))))
        gen = self.generator(runner.iter)
        chosen = torch.randperm(len(inputs), generator=gen)[:count].tolist()
        styled = self.stylize(runner, [inputs[i] for i in chosen], [samples[i] for i in chosen],
                              gen)
        if self.mode == 'replace':
            for i, img in zip(chosen, styled):
                inputs[i] = img
        else:
            import copy
            inputs.extend(styled)
            samples.extend(copy.deepcopy(samples[i]) for i in chosen)

    def stylize(self, runner, inputs, samples, generator):
        """Adversarially re-style raw images.

        Args:
            runner (Runner): The runner.
            inputs (list[Tensor]): Raw BGR images (3, H, W) in pixel units.
            samples (list[SegDataSample]): Their data samples (labels).
            generator (torch.Generator): Randomness of the style draw.

        Returns:
            list[Tensor]: Re-styled BGR float images of the input sizes.
        """
        model = _bare(runner.model)
        pre = model.data_preprocessor
        batch = pre(dict(inputs=list(inputs), data_samples=list(samples)), True)
        norm = norm_args_from_preprocessor(pre)
        rgb = denormalize(batch['inputs'], **norm).clamp(0, 255)
        gt_samples = batch['data_samples']

        # The segmentor runs in the training step's precision (autocast under
        # --amp); the loss is multiplied by the AMP loss scale so that float16
        # input gradients do not underflow (every ascent rule is invariant to a
        # positive scale of the gradient).
        scale = loss_scale(runner)

        def seg_loss(images):
            with training_autocast(runner, model):
                self.autocast_dtype = _autocast_dtype(images.device.type)
                losses = model.loss(normalize(images, **norm), gt_samples)
            return sum(v for k, v in losses.items() if 'loss' in k).float() * scale

        if self.ascent_steps > 0:
            # one image cannot be batch-normalised: use running statistics then
            with frozen_bn_stats(model), bn_eval(model, enabled=len(inputs) < 2):
                styled = self.perturbation.perturb(
                    rgb, seg_loss, steps=self.ascent_steps, step_size=self.step_size,
                    num_styles=1, generator=generator)
            if self.autocast_dtype is not None and not self._amp_logged:
                self._amp_logged = True
                print_log(f'[npdg] style ascent: segmentor forward under autocast '
                          f'({str(self.autocast_dtype).replace("torch.", "")}), loss scale '
                          f'{scale:g}', logger='current')
        else:
            with torch.no_grad():
                styled = self.perturbation.sample(rgb, num_styles=1, generator=generator)
        out = []
        for img, src in zip(styled.detach(), inputs):
            h, w = src.shape[-2:]
            out.append(img[:, :h, :w].flip(0).to(src.device))  # RGB -> BGR pixels
        return out
