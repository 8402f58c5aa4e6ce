"""Turn rasterised scene layers into a domain-styled RGB image.

The pipeline mimics scene radiance followed by a camera:

1. albedo: each primitive's material colour in the domain palette, times
   its shade and a small per-instance jitter;
2. texture: per-pixel and blotchy noise plus world-space patterns (tiles,
   bricks, stripes, bars, facade windows), faded out where the pattern is
   finer than a pixel;
3. sky gradient and clouds;
4. lighting: sun on side facades, ground shadows, haze with distance;
5. camera: exposure and white balance, emissive lamps, vignette, windshield
   reflection, optical blur, sensor noise, hue shift, saturation, contrast,
   gamma and sharpening; then quantisation to 8 bits.
"""
from functools import lru_cache

import cv2
import numpy as np

from .elements import Element
from .materials import EMISSIVE, TEXTURE_GROUPS, Material, texture_group
from .scene import FACING_LEFT, FACING_RIGHT, NUM_FACINGS
from .styles import TextureSpec, palette_table

_GROUP_INDEX = {name: i for i, name in enumerate(TEXTURE_GROUPS)}
_GROUP_LUT = np.array([_GROUP_INDEX[texture_group(m)] for m in Material],
                      np.int64)
_EMISSIVE_LUT = np.array([m in EMISSIVE for m in Material], bool)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _hash2(a, b):
    """Deterministic pseudo-random value in [0, 1) per integer cell."""
    x = np.sin(a * 12.9898 + b * 78.233) * 43758.5453
    return x - np.floor(x)


def _fade(footprint, period):
    """Pattern visibility: 1 when a period spans many pixels, 0 below ~1."""
    return np.clip(period / (3.0 * np.maximum(footprint, 1e-6)) - 0.5,
                   0.0, 1.0)


def _smooth_noise(rng, h, w, cell):
    """Unit-variance blotchy noise with features about ``cell`` px wide."""
    gh, gw = max(h // cell, 1) + 2, max(w // cell, 1) + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    up = cv2.resize(grid, (w + 2 * cell, h + 2 * cell),
                    interpolation=cv2.INTER_CUBIC)
    return up[cell:cell + h, cell:cell + w]


def _pattern(spec, coords):
    """Evaluate a world-space texture pattern (zero-mean-ish, in [-1, 1])."""
    u, v = coords['u'], coords['v']
    p = spec.period
    if spec.pattern == 'tiles':
        cu, cv = np.floor(u / p), np.floor(v / p)
        mortar = ((u / p - cu) < 0.1) | ((v / p - cv) < 0.1)
        val = np.where(mortar, -1.0, _hash2(cu, cv) - 0.5)
        fade = np.minimum(_fade(coords['fu'], p), _fade(coords['fv'], p))
    elif spec.pattern == 'bricks':
        row = np.floor(v / (p / 3.0))
        uu = u / p + 0.5 * (row % 2)
        mortar = ((uu - np.floor(uu)) < 0.06) | (
            (v / (p / 3.0) - row) < 0.15)
        val = np.where(mortar, -1.0, 0.2 * (_hash2(np.floor(uu), row) - .5))
        fade = np.minimum(_fade(coords['fu'], p), _fade(coords['fv'], p / 3))
    elif spec.pattern == 'stripes':
        val = np.sign(np.sin(2.0 * np.pi * u / p)) * 0.5
        fade = _fade(coords['fu'], p)
    elif spec.pattern == 'bars':
        val = np.where((u / p - np.floor(u / p)) < 0.3, 0.6, -0.6)
        fade = _fade(coords['fu'], p)
    else:
        return 0.0
    return spec.amp * val * fade


def _texture(style, group_map, coords, rng, h, w):
    """Relative brightness modulation from the domain's texture recipes."""
    fine = rng.standard_normal((h, w)).astype(np.float32)
    coarse = _smooth_noise(rng, h, w, max(h // 12, 2))
    mod = np.ones((h, w), np.float32)
    for name, gi in _GROUP_INDEX.items():
        mask = group_map == gi
        if not mask.any():
            continue
        spec = style.textures.get(name, TextureSpec())
        term = spec.fine * fine + spec.coarse * coarse + _pattern(spec,
                                                                  coords)
        mod = np.where(mask, mod + term, mod)
    return np.clip(mod, 0.2, 2.0)


def _windows(style, rgb, material_map, variant_map, coords, night):
    """Paint facade window grids (in facade world coordinates)."""
    mask = material_map == Material.FACADE
    if not mask.any():
        return rgb
    u, v = coords['u'], coords['v']
    pu, pv = style.window_period
    fu_, fv_ = style.window_fill
    phase = variant_map * 0.37
    cu, cv = np.floor(u / pu + phase), np.floor(v / pv)
    inside = (((u / pu + phase - cu) < fu_)
              & ((v / pv - cv) > 0.3) & ((v / pv - cv) < 0.3 + fv_)
              & (v > 0.4))
    fade = np.minimum(_fade(coords['fu'], pu), _fade(coords['fv'], pv))
    alpha = np.where(mask & inside, 0.85, 0.0) * fade
    alpha += np.where(mask, 0.25 * fu_ * fv_ * (1.0 - fade), 0.0)
    cell = _hash2(cu, cv)
    glass = np.asarray(style.window_rgb, np.float32) / 255.0
    win = glass[None, None, :] * (0.7 + 0.6 * cell[..., None])
    if night:
        lit = (cell > 0.6)[..., None]
        win = np.where(lit, np.array([1.0, 0.85, 0.5], np.float32) * 2.5,
                       win)
    a = alpha[..., None].astype(np.float32)
    return rgb * (1.0 - a) + win * a


def _sky(rgb, sky_mask, capture, rng, h, w, horizon):
    """Fill sky pixels with a vertical gradient plus clouds."""
    if not sky_mask.any():
        return rgb
    t = np.clip((np.arange(h) + 0.5) / (h * max(horizon, 0.05)), 0.0, 1.0)
    grad = (capture.sky_top[None, :] * (1.0 - t[:, None] ** 1.5)
            + capture.sky_horizon[None, :] * t[:, None] ** 1.5)
    sky = np.broadcast_to(grad[:, None, :], (h, w, 3)).astype(np.float32)
    if capture.clouds > 0:
        c = _smooth_noise(rng, h, w, max(h // 5, 2))
        cover = np.clip(c - 0.3, 0.0, 1.0)[..., None] * capture.clouds * 2.0
        white = np.clip(capture.sky_horizon * 1.1, 0, 1).astype(np.float32)
        sky = sky * (1.0 - cover) + white * cover
    return np.where(sky_mask[..., None], sky, rgb)


def _lighting(layers, capture, pid):
    """Per-pixel light factor from facings, sun side and shadows."""
    light = np.ones(NUM_FACINGS, np.float32)
    light[FACING_LEFT] = 1.0 - capture.sun * capture.sun_side * 0.8
    light[FACING_RIGHT] = 1.0 + capture.sun * capture.sun_side * 0.8
    factor = light[layers.facing[pid]]
    shadow = (layers.shadow > 0) & layers.ground_mask()
    return np.where(shadow, factor * (1.0 - capture.shadow), factor)


@lru_cache(maxsize=64)
def _radius2(h, w):
    """Squared, aspect-weighted distance from the image centre."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 * 0.5 + ((yy - h / 2) / (h / 2)) ** 2
    r2.setflags(write=False)
    return r2


def _camera(rgb, capture, emissive_rgb, emissive_mask, rng, h, w):
    """Apply exposure, blur, noise and the tone pipeline."""
    rgb = rgb * (capture.gain * capture.white_balance).astype(np.float32)
    if emissive_mask.any():
        rgb = np.where(emissive_mask[..., None],
                       np.maximum(rgb, emissive_rgb * 1.1), rgb)
    if capture.vignette > 0:
        rgb = rgb * (1.0 - capture.vignette * 0.5 * _radius2(h, w))[..., None]
    if capture.reflection > 0:
        glare = np.clip(_smooth_noise(rng, h, w, max(h // 3, 2)), 0, None)
        top = np.clip(1.0 - (np.arange(h, dtype=np.float32) + 0.5)
                      / (0.6 * h), 0.0, 1.0)[:, None]
        rgb = rgb + (capture.reflection * glare * top)[..., None]
    if capture.blur > 0.05:
        rgb = cv2.GaussianBlur(rgb, (0, 0), capture.blur)
    if capture.noise > 0:
        luma = rng.standard_normal((h, w, 1)).astype(np.float32)
        chroma = rng.standard_normal((h, w, 3)).astype(np.float32)
        rgb = rgb + (luma + 0.4 * chroma) * (capture.noise / 255.0)
    rgb = np.clip(rgb, 0.0, 1.0)
    rgb = _tone(rgb, capture)
    if capture.sharpen > 0:
        soft = cv2.GaussianBlur(rgb, (0, 0), 1.0)
        rgb = np.clip(rgb + capture.sharpen * (rgb - soft), 0.0, 1.0)
    return rgb


def _tone(rgb, capture):
    """Hue shift, saturation, contrast and gamma."""
    if abs(capture.hue_shift) > 1e-3:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + capture.hue_shift) % 360.0
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    luma = (rgb @ _LUMA)[..., None]
    rgb = luma + (rgb - luma) * capture.saturation
    mean = float(luma.mean())
    rgb = (rgb - mean) * capture.contrast + mean
    rgb = np.clip(rgb, 0.0, 1.0) ** (1.0 / capture.gamma)
    return rgb


def render(layers, style, capture, rng):
    """Render rasterised layers in a domain style.

    Args:
        layers (Layers): Output of :func:`~synthetic_domains.raster.rasterize`.
        style (DomainStyle): The domain's style.
        capture (Capture): This image's capture conditions.
        rng (np.random.Generator): Random source for noise.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8 RGB image.
    """
    h, w = layers.shape
    pid = layers.pid
    colours, counts = palette_table(style.name, style.shift)
    mat, var = layers.material, layers.variant
    table = colours[mat, var % counts[mat]] * layers.shade[:, None]
    jitter = 1.0 + style.instance_jitter * rng.standard_normal(
        (len(mat), 1)) + 0.3 * style.instance_jitter * rng.standard_normal(
        (len(mat), 3))
    table = (table * jitter).astype(np.float32)
    rgb = table[pid]
    material_map = mat[pid]
    coords = layers.world_coords()
    rgb = rgb * _texture(style, _GROUP_LUT[material_map], coords, rng, h,
                         w)[..., None]
    rgb = _windows(style, rgb, material_map, var[pid], coords,
                   capture.night)
    sky_mask = layers.element[pid] == Element.SKY
    rgb = _sky(rgb, sky_mask, capture, rng, h, w, layers.camera.horizon)
    rgb = rgb * _lighting(layers, capture, pid)[..., None]
    if np.isfinite(capture.haze_dist):
        haze = 1.0 - np.exp(-coords['depth'] / capture.haze_dist)
        haze = np.where(sky_mask, 0.0, haze).astype(np.float32)[..., None]
        hz = capture.sky_horizon.astype(np.float32)
        rgb = rgb * (1.0 - haze) + hz * haze
    emissive = _EMISSIVE_LUT[material_map]
    emissive_rgb = table[pid] if capture.night else rgb
    rgb = _camera(rgb.astype(np.float32), capture,
                  emissive_rgb.astype(np.float32),
                  emissive & capture.night, rng, h, w)
    return np.round(rgb * 255.0).astype(np.uint8)
