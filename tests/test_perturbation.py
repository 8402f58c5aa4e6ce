"""Style perturbations: AdvStyle, DSUNoise, DSP and the DSP training tool."""
import math
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from torch import nn

import npdg  # noqa: F401
from npdg.perturbation import (
    DSP,
    AdvStyle,
    DSUNoise,
    StylePerturbation,
    attach_dsu,
    build_perturbation,
    convert_vgg19_state_dict,
    denormalize,
    norm_args_from_preprocessor,
    normalize,
)
from npdg.perturbation.dsp import build_dsp_networks
from npdg.perturbation.dsp_training import CropDataset, kl_divergence, style_loss, train_dsp
from npdg.perturbation.vgg import VGGEncoder

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def mid_range_images(b=2, h=24, w=28, seed=0):
    """RGB images in [90, 160]: far from the clamp limits."""
    return 90.0 + 70.0 * torch.rand(b, 3, h, w, generator=gen(seed))


def red_mean(images):
    return images[:, 0].mean()


def standardise(x):
    """Per image and channel: zero mean, unit std."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True)
    return (x - mean) / std


def correlation(a, b):
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x / 255.0)


# --------------------------------------------------------------------- helpers
@pytest.mark.parametrize('bgr_to_rgb', [True, False])
def test_denormalize_inverts_mmseg_preprocessor(bgr_to_rgb):
    rng = np.random.default_rng(0)
    bgr = [torch.from_numpy(rng.integers(0, 256, (3, 6, 7), dtype=np.uint8)) for _ in range(2)]
    pre = SegDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=bgr_to_rgb)
    normalised = pre(dict(inputs=bgr), training=False)['inputs']
    args = norm_args_from_preprocessor(pre)
    assert args['bgr_to_rgb'] is bgr_to_rgb
    rgb = denormalize(normalised, **args)
    expected = torch.stack(bgr).float().flip(1)  # the loaded images are BGR
    assert torch.allclose(rgb, expected, atol=1e-4)
    back = normalize(rgb, **args)
    assert torch.allclose(back, normalised, atol=1e-6)


def test_normalize_hand_values_and_round_trip():
    x = torch.zeros(1, 3, 1, 1)
    x[0, :, 0, 0] = torch.tensor([10.0, 20.0, 30.0])  # RGB
    out = normalize(x, MEAN, STD, bgr_to_rgb=True)
    ref = (torch.tensor([10.0, 20.0, 30.0]) - torch.tensor(MEAN)) / torch.tensor(STD)
    assert torch.allclose(out.flatten(), ref)
    out_bgr = normalize(x, MEAN, STD, bgr_to_rgb=False)
    ref_bgr = (torch.tensor([30.0, 20.0, 10.0]) - torch.tensor(MEAN)) / torch.tensor(STD)
    assert torch.allclose(out_bgr.flatten(), ref_bgr)
    images = torch.rand(2, 3, 5, 4, generator=gen(1)) * 255
    for flag in (True, False):
        assert torch.allclose(denormalize(normalize(images, MEAN, STD, flag), MEAN, STD, flag),
                              images, atol=1e-4)
    assert torch.equal(denormalize(images, None, None, True), images)
    with pytest.raises(ValueError, match='mean has 2 values'):
        normalize(images, [1.0, 2.0], [1.0, 1.0], True)


def test_build_from_registry():
    assert isinstance(MODELS.build(dict(type='AdvStyle', step_size=0.2)), AdvStyle)
    assert isinstance(build_perturbation(dict(type='DSUNoise', p=1.0)), DSUNoise)
    assert MODELS.get('DSP') is DSP
    with pytest.raises(TypeError, match='not a style perturbation'):
        build_perturbation(dict(type='CrossEntropyLoss', avg_non_ignore=True))


# -------------------------------------------------------------------- AdvStyle
def test_adv_style_identity_without_jitter():
    images = torch.rand(2, 3, 10, 12, generator=gen(0)) * 255
    adv = AdvStyle(mean_jitter=0.0, std_jitter=0.0)
    out = adv.sample(images, num_styles=2)
    assert out.shape == (4, 3, 10, 12)
    assert torch.allclose(out, images.repeat_interleave(2, 0), atol=1e-3)


def test_adv_style_sample_renders_the_drawn_statistics():
    images = mid_range_images()
    adv = AdvStyle(mean_jitter=0.05, std_jitter=0.1)
    out, (mean, log_std) = adv.sample(images, num_styles=3, generator=gen(0), return_style=True)
    assert out.shape == (6, 3, 24, 28) and 0 <= out.min() and out.max() <= 255
    assert mean.requires_grad and mean.shape == (6, 3, 1, 1)
    assert torch.allclose(out.mean(dim=(2, 3)), 255 * mean.flatten(1), atol=1e-3)
    # std differs from the drawn one only by the min_std floor of the standardisation
    true_std = images.var(dim=(2, 3), unbiased=False).repeat_interleave(3, 0) / 255 ** 2
    shrink = (true_std / (true_std + adv.min_std ** 2)).sqrt()
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False),
                          255 * log_std.exp().flatten(1) * shrink, rtol=1e-4)
    # differentiable in the style variables
    grad = torch.autograd.grad(red_mean(out), mean)[0]
    assert torch.allclose(grad[:, 0], torch.full((6, 1, 1), 255 / 6), rtol=1e-4)


def test_adv_style_styles_differ_but_content_is_kept():
    images = torch.rand(2, 3, 16, 16, generator=gen(3)) * 255
    out = AdvStyle().sample(images, num_styles=4, generator=gen(0))
    grouped = out.view(2, 4, 3, 16, 16)
    for b in range(2):
        for k in range(4):
            for j in range(k + 1, 4):
                assert (grouped[b, k] - grouped[b, j]).abs().max() > 1.0
            # image-major rows: row (b, k) shows image b, not the other image
            same = correlation(standardise(grouped[b, k:k + 1]), standardise(images[b:b + 1]))
            assert same > 0.95
            assert abs(correlation(standardise(grouped[b, k:k + 1]),
                                   standardise(images[1 - b:2 - b]))) < 0.2


def test_adv_style_determinism():
    images = torch.rand(2, 3, 8, 8, generator=gen(0)) * 255
    adv = AdvStyle()
    a = adv.sample(images, 2, generator=gen(5))
    b = adv.sample(images, 2, generator=gen(5))
    c = adv.sample(images, 2, generator=gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    pa = adv.perturb(images, red_mean, steps=1, num_styles=2, generator=gen(5))
    pb = adv.perturb(images, red_mean, steps=1, num_styles=2, generator=gen(5))
    assert torch.equal(pa, pb)


def test_adv_style_sign_ascent_moves_red_mean_by_one_step():
    images = mid_range_images()
    adv = AdvStyle(mean_jitter=0.02, std_jitter=0.05, step_size=0.1)
    start = adv.perturb(images, red_mean, steps=0, num_styles=2, generator=gen(0))
    assert torch.equal(start, adv.sample(images, 2, generator=gen(0)))
    moved = adv.perturb(images, red_mean, steps=1, num_styles=2, generator=gen(0))
    # red channel means rise by 0.1 * 255; green/blue means stay
    assert red_mean(moved) - red_mean(start) == pytest.approx(25.5, abs=1e-2)
    assert torch.allclose(moved[:, 1:].mean(dim=(2, 3)), start[:, 1:].mean(dim=(2, 3)),
                          atol=1e-3)
    assert not moved.requires_grad and 0 <= moved.min() and moved.max() <= 255


def test_adv_style_normalized_ascent_step_length():
    images = mid_range_images()
    adv = AdvStyle(ascent='normalized', step_size=0.05)
    adv.perturb(images, red_mean, steps=0, num_styles=2, generator=gen(0))
    start = torch.cat([v.flatten(1) for v in adv.last_style], 1)
    moved_img = adv.perturb(images, red_mean, steps=1, num_styles=2, generator=gen(0))
    moved = torch.cat([v.flatten(1) for v in adv.last_style], 1)
    assert torch.allclose((moved - start).norm(dim=1), torch.full((4,), 0.05), atol=1e-5)
    assert red_mean(moved_img) > red_mean(adv.sample(images, 2, generator=gen(0)))


def test_perturb_leaves_no_gradients_and_works_under_no_grad():
    model = ToyModel()
    images = torch.rand(2, 3, 8, 8, generator=gen(0)) * 255

    def loss_fn(x):
        return model(x).pow(2).mean()

    start = AdvStyle().perturb(images, loss_fn, steps=0, num_styles=2, generator=gen(1))
    with torch.no_grad():
        out = AdvStyle().perturb(images, loss_fn, steps=2, num_styles=2, generator=gen(1))
    assert all(p.grad is None for p in model.parameters())
    assert not out.requires_grad and out.shape == (4, 3, 8, 8)
    assert loss_fn(out) > loss_fn(start)
    with pytest.raises(ValueError, match='scalar'):
        AdvStyle().perturb(images, lambda x: x.mean(dim=1), steps=1)
    with pytest.raises(ValueError, match='num_styles'):
        AdvStyle().sample(images, num_styles=0)


# ------------------------------------------------------------------------- DSU
def test_dsu_eval_identity_and_training_noise():
    x = torch.randn(4, 5, 6, 6, generator=gen(0)) * 2 + 1
    dsu = DSUNoise(p=1.0).eval()
    assert dsu(x) is x
    dsu.train()
    torch.manual_seed(0)
    y = dsu(x)
    assert y.shape == x.shape
    assert (y.mean(dim=(2, 3)) - x.mean(dim=(2, 3))).abs().max() > 1e-3
    assert DSUNoise(p=0.0).train()(x) is x
    xg = x.clone().requires_grad_(True)
    dsu(xg).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()


def test_dsu_sample_statistics_match_hand_computation():
    x = torch.randn(3, 4, 5, 5, generator=gen(0)) * torch.arange(1.0, 5.0).view(1, 4, 1, 1)
    dsu = DSUNoise(eps=1e-6)
    out, (e_mu, e_sig) = dsu.sample(x, num_styles=2, generator=gen(1), return_style=True)
    assert out.shape == (6, 4, 5, 5)
    xn = x.double().numpy()
    mu = xn.mean(axis=(2, 3))
    sig = np.sqrt(xn.var(axis=(2, 3)) + 1e-6)
    sigma_mu = np.sqrt(mu.var(axis=0) + 1e-6)
    sigma_sig = np.sqrt(sig.var(axis=0) + 1e-6)
    beta = np.repeat(mu, 2, 0) + e_mu.detach().flatten(1).double().numpy() * sigma_mu
    gamma = np.repeat(sig, 2, 0) + e_sig.detach().flatten(1).double().numpy() * sigma_sig
    got = out.detach().double().numpy()
    np.testing.assert_allclose(got.mean(axis=(2, 3)), beta, atol=1e-4)
    true_sig = np.repeat(np.sqrt(xn.var(axis=(2, 3))), 2, 0)
    np.testing.assert_allclose(got.std(axis=(2, 3)),
                               np.abs(gamma) * true_sig / np.repeat(sig, 2, 0), rtol=1e-4)
    assert not torch.allclose(out[0], out[1])  # two draws of the same sample differ


def test_dsu_perturb_ascends_and_is_unclamped():
    x = torch.randn(3, 4, 5, 5, generator=gen(0)) * 300

    def loss_fn(f):
        return f.mean()

    dsu = DSUNoise()
    start = dsu.perturb(x, loss_fn, steps=0, num_styles=2, generator=gen(2))
    moved = dsu.perturb(x, loss_fn, steps=2, num_styles=2, generator=gen(2))
    assert loss_fn(moved) > loss_fn(start)
    assert start.min() < 0 and start.max() > 255  # feature level: no clamping
    assert dsu.image_level is False and AdvStyle.image_level is True


def test_attach_dsu_follows_model_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 2, 1))
    x = torch.randn(4, 3, 6, 6, generator=gen(0))
    model.eval()
    clean = model(x)
    handle = attach_dsu(model, '0', p=1.0)
    assert torch.equal(model(x), clean)
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model(x), clean)
    handle.remove()
    assert torch.equal(model(x), clean)
    with pytest.raises(ValueError, match='no submodule'):
        attach_dsu(model, 'backbone.layer9')


# ------------------------------------------------------------------------- DSP
@pytest.fixture(scope='module')
def dsp_files(tmp_path_factory):
    """Random VGG weights in torchvision layout and a small random decoder.pth."""
    root = tmp_path_factory.mktemp('dsp')
    encoder = VGGEncoder()
    encoder.init_random(0)
    state = {f'features.{k}': v for k, v in encoder.features.state_dict().items()}
    state['features.21.weight'] = torch.zeros(512, 512, 3, 3)  # deeper layer: dropped
    state['classifier.0.weight'] = torch.zeros(4, 4)
    vgg = str(root / 'vgg19.pth')
    torch.save(state, vgg)
    config = dict(channels=512, latent_dim=16, hidden_dim=32)
    decoder, vae = build_dsp_networks(config)
    with torch.no_grad():
        decoder.layers[-1].bias.fill_(0.5)  # outputs mid-grey: away from the clamp
    dec = str(root / 'decoder.pth')
    torch.save(dict(decoder=decoder.state_dict(), style_vae=vae.state_dict(), config=config), dec)
    return vgg, dec


@pytest.fixture(scope='module')
def dsp(dsp_files):
    return DSP(*dsp_files, max_latent_norm=3.0)


def test_dsp_missing_files_name_the_path(dsp_files, tmp_path):
    vgg, dec = dsp_files
    missing = str(tmp_path / 'nope_vgg.pth')
    with pytest.raises(FileNotFoundError, match='nope_vgg.pth') as err:
        DSP(missing, dec)
    assert 'convert' in str(err.value)
    missing = str(tmp_path / 'nope_decoder.pth')
    with pytest.raises(FileNotFoundError, match='nope_decoder.pth') as err:
        DSP(vgg, missing)
    assert 'tools/train_dsp.py' in str(err.value)
    with pytest.raises(ValueError, match='latent_dim=16'):
        DSP(vgg, dec, latent_dim=512)


def test_vgg_layout_matches_mmcv_vgg19():
    from mmcv.cnn import VGG
    ref = VGG(depth=19)
    encoder = VGGEncoder()
    state = convert_vgg19_state_dict({'state_dict': {f'backbone.{k}': v for k, v in
                                                     ref.state_dict().items()}})
    assert sorted(state) == sorted(f'features.{i}.{p}' for i in (0, 2, 5, 7, 10, 12, 14, 16, 19)
                                   for p in ('weight', 'bias'))
    encoder.load_state_dict(state, strict=False)
    images = torch.rand(1, 3, 16, 16, generator=gen(0)) * 255
    with torch.no_grad():
        ours = encoder(images)
        theirs = ref.features[:21](encoder.preprocess(images))
    assert ours.shape == (1, 512, 2, 2)
    assert torch.allclose(ours, theirs, atol=1e-5)
    with pytest.raises(KeyError, match='my_file.pth'):
        convert_vgg19_state_dict({'conv.weight': torch.zeros(1)}, source='my_file.pth')


def test_dsp_sample_shapes_range_and_determinism(dsp):
    images = torch.rand(2, 3, 20, 28, generator=gen(0)) * 255  # not multiples of 8
    out = dsp.sample(images, num_styles=3, generator=gen(0))
    assert out.shape == (6, 3, 20, 28)
    assert out.min() >= 0 and out.max() <= 255
    assert (out[0] - out[1]).abs().max() > 1e-3
    assert torch.equal(out, dsp.sample(images, num_styles=3, generator=gen(0)))


def test_dsp_ascent_increases_loss_and_keeps_latent_norm(dsp):
    images = torch.rand(2, 3, 16, 16, generator=gen(1)) * 255
    model = ToyModel()

    def loss_fn(x):
        return red_mean(x) + 0.0 * model(x).mean()

    start = dsp.perturb(images, loss_fn, steps=0, num_styles=2, generator=gen(3))
    moved = dsp.perturb(images, loss_fn, steps=2, step_size=0.5, num_styles=2,
                        generator=gen(3))
    assert red_mean(moved) > red_mean(start)
    assert not moved.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is None and not p.requires_grad for p in dsp.parameters())
    # a huge step lands on the norm limit (rms norm = ||eps|| / sqrt(d))
    dsp.perturb(images, loss_fn, steps=1, step_size=100.0, num_styles=2, generator=gen(3))
    eps = dsp.last_style[0]
    rms = eps.norm(dim=1) / math.sqrt(eps.shape[1])
    assert torch.allclose(rms, torch.full_like(rms, 3.0), atol=1e-4)


def test_dsp_l2_norm_mode(dsp_files):
    dsp = DSP(*dsp_files, max_latent_norm=2.0, latent_norm='l2')
    images = torch.rand(1, 3, 8, 8, generator=gen(0)) * 255
    dsp.perturb(images, red_mean, steps=1, step_size=50.0, num_styles=3, generator=gen(0))
    assert torch.allclose(dsp.last_style[0].norm(dim=1), torch.full((3,), 2.0), atol=1e-4)


def test_dsp_stays_frozen(dsp):
    dsp.train()
    assert not dsp.training and not any(m.training for m in dsp.modules())
    assert not any(p.requires_grad for p in dsp.parameters())


# ---------------------------------------------------------------- DSP training
def test_training_losses_hand_values():
    feats = [torch.randn(2, 3, 4, 4, generator=gen(0))]
    assert style_loss(feats, feats) == 0
    shifted = [feats[0] + 1.0]
    assert float(style_loss(shifted, feats)) == pytest.approx(1.0, abs=1e-5)
    assert float(kl_divergence(torch.zeros(2, 4), torch.zeros(2, 4))) == 0
    assert float(kl_divergence(torch.ones(2, 4), torch.zeros(2, 4))) == pytest.approx(0.5)


def test_crop_dataset_crops_the_right_region(tmp_path):
    img = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    cv2.imwrite(str(tmp_path / 'a.png'), img)  # cv2 writes BGR
    data = CropDataset([str(tmp_path / 'a.png')], size=4, resize=0)
    crop = data[(0, 0.0, 0.999)]
    expected = torch.from_numpy(img[0:4, 8:12, ::-1].copy()).permute(2, 0, 1).float()
    assert torch.equal(crop, expected)


def write_images(folder, n, seed):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(str(folder / f'{i}.{"png" if i % 2 else "jpg"}'),
                    rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8))
    return str(folder)


def test_train_dsp_tool_smoke_and_resume(tmp_path):
    content = write_images(tmp_path / 'content', 4, 0)
    style = write_images(tmp_path / 'style', 4, 1)
    out = str(tmp_path / 'out')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train_dsp.py'), '--content-dir', content,
           '--style-dir', style, '--random-vgg', '--out', out, '--iters', '2', '--size', '16',
           '--batch', '2', '--latent-dim', '8', '--hidden-dim', '16', '--device', 'cpu',
           '--log-interval', '1']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'RANDOM weights' in proc.stdout
    log = open(osp.join(out, 'train_dsp.log')).read()
    assert 'iter 1/2' in log and 'iter 2/2' in log
    ckpt = osp.join(out, 'decoder.pth')
    assert torch.load(ckpt, weights_only=True)['iteration'] == 2
    with pytest.warns(UserWarning, match='RANDOM VGG'):
        dsp = DSP(osp.join(out, 'vgg_random.pth'), ckpt)
    assert dsp.sample(torch.rand(1, 3, 16, 16) * 255, num_styles=2).shape == (2, 3, 16, 16)
    # resume continues from iteration 2 with the saved optimiser state
    with pytest.warns(UserWarning, match='RANDOM'):
        train_dsp(content, style, out, iters=3, random_vgg=True, size=16, batch=2,
                  latent_dim=8, hidden_dim=16, device='cpu', log_interval=1)
    log = open(osp.join(out, 'train_dsp.log')).read()
    assert 'resumed from' in log and 'iter 3/3' in log and 'iter 1/3' not in log
    assert torch.load(ckpt, weights_only=True)['iteration'] == 3


def test_subclass_contract():
    assert issubclass(DSP, StylePerturbation) and issubclass(DSUNoise, StylePerturbation)
    assert os.path.isfile(osp.join(REPO, 'tools', 'train_dsp.py'))
