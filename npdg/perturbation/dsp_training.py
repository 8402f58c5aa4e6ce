"""Training of DSP's image decoder and style VAE (used by ``tools/train_dsp.py``).

One step: random crops of a content image and a style image go through the
frozen VGG-19; the style image's relu4_1 statistics go through the VAE
(encode, reparameterise, decode); AdaIN gives the content features the
reconstructed statistics; the decoder renders them. Losses:

- content: MSE between VGG relu4_1 of the rendering and the AdaIN target;
- style: MSE of channel means and stds of relu1_1..relu4_1 between the
  rendering and the style image (summed over layers);
- reconstruction of the style statistics (MSE of means and of stds);
- KL divergence of the latent posterior from N(0, I) (mean per dimension).

Checkpoints (``decoder.pth``, see :mod:`npdg.perturbation.dsp`) hold only
tensors and plain containers, load with ``weights_only=True`` and carry the
optimiser and sampler states, so a run resumes from its last save. They (and
``vgg_random.pth``) are written atomically (temporary file, fsync, rename), so
a kill mid-save leaves the previous file; a rerun removes the dead run's
temporary file.
"""
import json
import math
import os
import os.path as osp
import time
import warnings

import cv2
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from npdg.utils.checkpoint_io import atomic_write

from .dsp import DEFAULT_CONFIG, adain, build_dsp_networks, channel_stats
from .vgg import VGGEncoder, load_vgg_encoder, save_vgg_encoder

IMAGE_EXTS = ('.jpg', '.jpeg', '.png')
CHECKPOINT_NAME = 'decoder.pth'
LOG_NAME = 'train_dsp.log'
RANDOM_VGG_NAME = 'vgg_random.pth'
ARCH_KEYS = ('channels', 'latent_dim', 'hidden_dim')
RANDOM_VGG_WARNING = (
    '\n' + '!' * 78 + '\n'
    '!! --random-vgg: the VGG encoder has RANDOM weights. The decoder and style VAE\n'
    '!! trained here are MEANINGLESS and must only be used for smoke tests.\n'
    + '!' * 78)


def list_images(folder):
    """All jpg/jpeg/png files under ``folder`` (recursive), sorted.

    Args:
        folder (str): Directory.

    Returns:
        list[str]: Image paths.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Image folder not found: {folder!r}.')
    paths = [osp.join(root, name) for root, _, names in os.walk(folder)
             for name in names if name.lower().endswith(IMAGE_EXTS)]
    if not paths:
        raise FileNotFoundError(f'No {"/".join(IMAGE_EXTS)} images in {folder!r}.')
    return sorted(paths)


def read_rgb(path):
    """Read an image with cv2 as an RGB uint8 array (H, W, 3)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f'cv2 could not read the image {path!r}; is it a valid jpg/png?')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def resize_short_side(img, short):
    """Resize so the shorter side equals ``short`` (aspect ratio kept)."""
    h, w = img.shape[:2]
    scale = short / min(h, w)
    if scale == 1.0:
        return img
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, size, interpolation=interp)


def crop_at(img, size, fy, fx):
    """Crop a ``size`` square at relative offsets ``fy, fx`` in [0, 1)."""
    h, w = img.shape[:2]
    y = min(int(fy * (h - size + 1)), h - size)
    x = min(int(fx * (w - size + 1)), w - size)
    return img[y:y + size, x:x + size]


class CropDataset(Dataset):
    """Random square crops of a folder's images as RGB float tensors in [0, 255].

    Keys are ``(image index, fy, fx)`` drawn by :class:`RandomCropSampler`, so
    the crops depend only on the sampler's generator (not on workers).

    Args:
        paths (list[str]): Image files.
        size (int): Crop side.
        resize (int): Shorter side to resize to first (0 = keep); images whose
            shorter side is below ``size`` are enlarged to ``size``.
    """

    def __init__(self, paths, size, resize):
        self.paths = list(paths)
        self.size = int(size)
        self.resize = int(resize)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, key):
        idx, fy, fx = key
        img = read_rgb(self.paths[idx])
        short = self.resize if self.resize > 0 else min(img.shape[:2])
        img = resize_short_side(img, max(short, self.size))
        crop = crop_at(img, self.size, fy, fx)
        return torch.from_numpy(crop.copy()).permute(2, 0, 1).float()


class RandomCropSampler(Sampler):
    """Endless batches of ``(image index, fy, fx)`` keys from a torch generator.

    Args:
        num_images (int): Images in the folder.
        batch_size (int): Keys per batch.
        generator (torch.Generator): Randomness source (its state is saved
            with checkpoints).
    """

    def __init__(self, num_images, batch_size, generator):
        self.num_images = num_images
        self.batch_size = batch_size
        self.generator = generator

    def __iter__(self):
        while True:
            idx = torch.randint(self.num_images, (self.batch_size,), generator=self.generator)
            offs = torch.rand((self.batch_size, 2), generator=self.generator)
            yield [(int(i), float(f[0]), float(f[1])) for i, f in zip(idx, offs)]


def endless_batches(folder, size, resize, batch_size, generator, workers=0):
    """Iterator over batches of random crops, (N, 3, size, size) in [0, 255].

    Args:
        folder (str): Image folder.
        size (int): Crop side.
        resize (int): Shorter side to resize to first (0 = keep).
        batch_size (int): Crops per batch.
        generator (torch.Generator): Randomness source.
        workers (int): DataLoader workers (0 reads in this process and keeps
            resumed runs exactly reproducible).

    Returns:
        Iterator[torch.Tensor]: Batches.
    """
    dataset = CropDataset(list_images(folder), size, resize)
    sampler = RandomCropSampler(len(dataset), batch_size, generator)
    return iter(DataLoader(dataset, batch_sampler=sampler, num_workers=workers))


def style_loss(out_feats, style_feats):
    """Sum over layers of MSE between channel means and between channel stds.

    Args:
        out_feats (list[torch.Tensor]): VGG layers of the renderings.
        style_feats (list[torch.Tensor]): The same layers of the style images.

    Returns:
        torch.Tensor: Scalar loss.
    """
    loss = 0.0
    for out, ref in zip(out_feats, style_feats):
        o_mean, o_std = channel_stats(out)
        r_mean, r_std = channel_stats(ref)
        loss = loss + F.mse_loss(o_mean, r_mean) + F.mse_loss(o_std, r_std)
    return loss


def kl_divergence(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)), averaged over samples and dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def dsp_losses(encoder, decoder, vae, content, style, generator=None):
    """All DSP training losses for one batch.

    Args:
        encoder (VGGEncoder): Frozen VGG-19.
        decoder (AdaINDecoder): Image decoder being trained.
        vae (StyleVAE): Style VAE being trained.
        content (torch.Tensor): RGB content crops in [0, 255], (N, 3, S, S).
        style (torch.Tensor): RGB style crops in [0, 255], (N, 3, S, S).
        generator (torch.Generator, optional): Source of the VAE's noise.

    Returns:
        dict[str, torch.Tensor]: ``content``, ``style``, ``recon``, ``kl``.
    """
    with torch.no_grad():
        content_feat = encoder(content)
        style_feats = encoder(style, all_layers=True)
    s_mean, s_std = channel_stats(style_feats[-1])
    rec_mean, rec_std, mu, logvar = vae(s_mean, s_std, generator)
    target = adain(content_feat, rec_mean, rec_std)
    rendered = decoder(target) * 255.0
    out_feats = encoder(rendered, all_layers=True)
    return dict(content=F.mse_loss(out_feats[-1], target.detach()),
                style=style_loss(out_feats, style_feats),
                recon=F.mse_loss(rec_mean, s_mean) + F.mse_loss(rec_std, s_std),
                kl=kl_divergence(mu, logvar))


def weighted_total(losses, weights):
    """``sum_k weights[k] * losses[k]``."""
    return sum(weights[k] * v for k, v in losses.items())


class TrainLog:
    """Appends progress lines to ``train_dsp.log`` and prints them.

    Args:
        path (str): Log file.
    """

    def __init__(self, path):
        self.path = path

    def write(self, line):
        """Print ``line`` and append it to the log file."""
        print(line, flush=True)
        with open(self.path, 'a', encoding='utf-8') as f:
            f.write(line + '\n')


def save_checkpoint(path, decoder, vae, optimizer, iteration, config, generators):
    """Write ``decoder.pth`` atomically (tensors and plain containers only).

    Through :func:`npdg.utils.checkpoint_io.atomic_write`: a temporary file
    beside ``path`` (``decoder.pth.tmp-<pid>``), flushed and fsynced, then
    renamed over it, so a kill mid-save leaves the previous checkpoint intact
    (an error also removes the temporary file).

    Args:
        path (str): Destination.
        decoder (AdaINDecoder): Image decoder.
        vae (StyleVAE): Style VAE.
        optimizer (torch.optim.Optimizer): Optimiser (for resuming).
        iteration (int): Iterations done.
        config (dict): Architecture and run settings.
        generators (dict[str, torch.Generator]): Samplers' and VAE noise
            generators (for resuming).
    """
    ckpt = dict(decoder=_cpu_state(decoder), style_vae=_cpu_state(vae), config=dict(config),
                iteration=int(iteration), optimizer=optimizer.state_dict(),
                generator_state={k: g.get_state() for k, g in generators.items()})
    with atomic_write(path) as f:
        torch.save(ckpt, f)


def _cpu_state(module):
    """A module's state dict with CPU copies of its tensors."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _load_resume(path, decoder, vae, optimizer, config, generators):
    """Restore a run from ``path``; returns the iteration to continue from."""
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    for key in ARCH_KEYS:
        if ckpt['config'].get(key) != config[key]:
            raise ValueError(f'{path} was trained with {key}={ckpt["config"].get(key)}, this '
                             f'run asks for {config[key]}; use another --out or --no-resume.')
    decoder.load_state_dict(ckpt['decoder'])
    vae.load_state_dict(ckpt['style_vae'])
    optimizer.load_state_dict(ckpt['optimizer'])
    for key, state in ckpt.get('generator_state', {}).items():
        if key in generators:
            generators[key].set_state(state)
    return int(ckpt['iteration'])


def prepare_encoder(vgg, random_vgg, out_dir, seed, log):
    """Load the VGG-19 (or make/reuse a random one) and freeze it.

    Args:
        vgg (str | None): VGG-19 weight file.
        random_vgg (bool): Use random weights (smoke tests only).
        out_dir (str): Output folder (holds ``vgg_random.pth``).
        seed (int): Seed of the random weights.
        log (TrainLog): Progress log.

    Returns:
        tuple[VGGEncoder, str]: The frozen encoder and its weight file.
    """
    if bool(vgg) == bool(random_vgg):
        raise ValueError('Give exactly one of --vgg PATH (ImageNet VGG-19 weights) and '
                         '--random-vgg (smoke tests only).')
    if random_vgg:
        warnings.warn(RANDOM_VGG_WARNING, stacklevel=2)
        log.write(RANDOM_VGG_WARNING)
        vgg = osp.join(out_dir, RANDOM_VGG_NAME)
        if not osp.isfile(vgg):
            encoder = VGGEncoder()
            encoder.init_random(seed)
            save_vgg_encoder(encoder, vgg)
    encoder = load_vgg_encoder(vgg)
    for param in encoder.parameters():
        param.requires_grad_(False)
    return encoder.eval(), osp.abspath(vgg)


def make_config(args_dict, vgg_path):
    """Architecture and run settings stored in ``decoder.pth``."""
    config = {**DEFAULT_CONFIG}
    config.update({k: args_dict[k] for k in ARCH_KEYS if args_dict.get(k) is not None})
    config.update(size=args_dict['size'], batch=args_dict['batch'], lr=args_dict['lr'],
                  lr_decay=args_dict['lr_decay'], weights=dict(args_dict['weights']),
                  random_vgg=bool(args_dict['random_vgg']), vgg_checkpoint=vgg_path,
                  content_dir=osp.abspath(args_dict['content_dir']),
                  style_dir=osp.abspath(args_dict['style_dir']))
    return config


DEFAULT_WEIGHTS = dict(content=1.0, style=10.0, recon=1.0, kl=0.1)


def train_dsp(content_dir, style_dir, out_dir, iters, vgg=None, random_vgg=False, size=256,
              resize=None, batch=8, lr=1e-4, lr_decay=5e-5, weights=None, latent_dim=512,
              hidden_dim=1024, device=None, workers=0, seed=0, log_interval=10,
              save_interval=1000, resume=True):
    """Train DSP's decoder and style VAE; write ``out_dir/decoder.pth``.

    Args:
        content_dir (str): Folder of content images (e.g. the source domain).
        style_dir (str): Folder of style images.
        out_dir (str): Output folder (checkpoint, log, random VGG).
        iters (int): Total iterations (a resumed run continues up to it).
        vgg (str, optional): ImageNet VGG-19 weights (torchvision/mmcv layout).
        random_vgg (bool): Random VGG, smoke tests only (warns loudly).
        size (int): Crop side. Defaults to 256.
        resize (int, optional): Shorter side before cropping; ``2 * size``
            when ``None``, 0 keeps the image size.
        batch (int): Batch size. Defaults to 8.
        lr (float): Adam learning rate. Defaults to 1e-4.
        lr_decay (float): ``lr_t = lr / (1 + lr_decay * t)``. Defaults to 5e-5.
        weights (dict, optional): Loss weights (``content``, ``style``,
            ``recon``, ``kl``); missing ones from :data:`DEFAULT_WEIGHTS`.
        latent_dim (int): VAE latent size. Defaults to 512.
        hidden_dim (int): VAE hidden width. Defaults to 1024.
        device (str, optional): ``'cuda'`` when available, else ``'cpu'``.
        workers (int): Data loading workers. Defaults to 0.
        seed (int): Seed of initialisation and sampling. Defaults to 0.
        log_interval (int): Iterations between log lines. Defaults to 10.
        save_interval (int): Iterations between saves. Defaults to 1000.
        resume (bool): Continue from ``out_dir/decoder.pth`` when present.

    Returns:
        str: Path of ``decoder.pth``.
    """
    os.makedirs(out_dir, exist_ok=True)
    device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    log = TrainLog(osp.join(out_dir, LOG_NAME))
    from npdg.utils.resume import remove_stale_temps
    removed = remove_stale_temps(out_dir)  # left by a run killed mid-save
    if removed:
        log.write(f'removed {len(removed)} temporary file(s) of an interrupted save: '
                  f'{", ".join(sorted(removed))}')
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    resize = 2 * size if resize is None else resize
    torch.manual_seed(seed)
    encoder, vgg_path = prepare_encoder(vgg, random_vgg, out_dir, seed, log)
    config = make_config(dict(latent_dim=latent_dim, hidden_dim=hidden_dim, size=size,
                              batch=batch, lr=lr, lr_decay=lr_decay, weights=weights,
                              random_vgg=random_vgg, content_dir=content_dir,
                              style_dir=style_dir), vgg_path)
    decoder, vae = build_dsp_networks(config)
    params = list(decoder.parameters()) + list(vae.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    generators = dict(content=torch.Generator().manual_seed(seed),
                      style=torch.Generator().manual_seed(seed + 1),
                      noise=torch.Generator().manual_seed(seed + 2))
    ckpt_path = osp.join(out_dir, CHECKPOINT_NAME)
    start = 0
    if resume and osp.isfile(ckpt_path):
        start = _load_resume(ckpt_path, decoder, vae, optimizer, config, generators)
        log.write(f'resumed from {ckpt_path} at iteration {start}')
    log.write('config ' + json.dumps(config, sort_keys=True))
    for module in (encoder, decoder, vae):
        module.to(device)
    decoder.train()
    vae.train()
    _optimizer_to(optimizer, device)
    contents = endless_batches(content_dir, size, resize, batch, generators['content'], workers)
    styles = endless_batches(style_dir, size, resize, batch, generators['style'], workers)
    tic = time.time()
    for it in range(start, iters):
        _set_lr(optimizer, lr / (1.0 + lr_decay * it))
        losses = dsp_losses(encoder, decoder, vae, next(contents).to(device),
                            next(styles).to(device), generators['noise'])
        total = weighted_total(losses, weights)
        if not torch.isfinite(total):
            raise FloatingPointError(f'DSP training loss is {total.item()} at iteration '
                                     f'{it + 1}; lower --lr or check the images.')
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        done = it + 1
        if done % log_interval == 0 or done == iters:
            _log_progress(log, done, iters, start, total, losses, optimizer, tic)
        if done % save_interval == 0 or done == iters:
            save_checkpoint(ckpt_path, decoder, vae, optimizer, done, config, generators)
            log.write(f'saved {ckpt_path} at iteration {done}')
    if start >= iters:
        log.write(f'{ckpt_path} already has {start} >= {iters} iterations; nothing to do.')
    return ckpt_path


def _set_lr(optimizer, lr):
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group['lr'] = lr


def _optimizer_to(optimizer, device):
    """Move the optimiser's state tensors (except Adam's ``step``) to ``device``."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and key != 'step':
                state[key] = value.to(device)


def _log_progress(log, done, iters, start, total, losses, optimizer, tic):
    """Write one progress line with losses, speed and remaining time."""
    per_it = (time.time() - tic) / max(1, done - start)
    eta = per_it * (iters - done)
    parts = ' '.join(f'{k} {v.item():.4f}' for k, v in losses.items())
    log.write(f'iter {done}/{iters} loss {total.item():.4f} {parts} '
              f'lr {optimizer.param_groups[0]["lr"]:.3g} {per_it:.3f}s/it '
              f'eta {math.floor(eta / 60)}m{int(eta % 60):02d}s')


__all__ = ['train_dsp', 'dsp_losses', 'style_loss', 'kl_divergence', 'list_images',
           'CropDataset', 'RandomCropSampler', 'DEFAULT_WEIGHTS']
