"""Per-domain appearance of the synthetic datasets.

A :class:`DomainStyle` fixes what is constant in a domain: its colour
palette (the canonical material colours of :mod:`synthetic_domains.materials`
moved in hue, saturation and value, globally and per material), its texture
recipes (noise amplitudes, tiles, bricks, window grids), the skies it shows,
and the *ranges* of its capture conditions (exposure, white balance,
contrast, haze, vignetting, blur, sensor noise, sharpening, JPEG quality, the
ego-vehicle hood). :func:`sample_capture` draws the per-image conditions
from those ranges.

The four styles, in short:

* ``gta``: clean game rendering: saturated canonical colours, smooth
  textures, big glossy windows, no sensor noise or blur; *varied* lighting
  (time of day: day, dusk, overcast; sun and shadows; occasional haze).
* ``cityscapes``: overcast German cities: desaturated, greenish-grey cast,
  low contrast, white skies, red cobble sidewalks, light patched asphalt,
  fine sensor noise, slight blur and vignette, the ego hood in every frame.
* ``bdd100k``: US dash cameras: warm brown asphalt, strong random white
  balance, high contrast, heavy haze, strong noise and blur, windshield
  reflections, some frames at night, hood in half the frames,
  low-quality JPEG.
* ``mapillary``: crowd-sourced phone photos: vivid colours, lime
  vegetation, deep blue skies, bluish asphalt, per-image camera hue and
  contrast, sharpening, mid/high-quality JPEG, varied image sizes.
"""
import colorsys
import dataclasses
from functools import lru_cache

import numpy as np

from .materials import BASE_COLOURS
from .materials import Material as M


@dataclasses.dataclass(frozen=True)
class TextureSpec:
    """Texture recipe of one texture group in one domain.

    Attributes:
        fine (float): Amplitude of per-pixel noise (relative brightness).
        coarse (float): Amplitude of smooth, blotchy noise.
        pattern (str): ``'none'``, ``'tiles'``, ``'bricks'``, ``'stripes'``
            or ``'bars'`` (laid out in world coordinates).
        period (float): Pattern period in world units (camera heights).
        amp (float): Pattern amplitude (relative brightness).
    """
    fine: float = 0.03
    coarse: float = 0.05
    pattern: str = 'none'
    period: float = 1.0
    amp: float = 0.0


@dataclasses.dataclass(frozen=True)
class Sky:
    """One kind of sky: colour at the top, at the horizon, cloudiness."""
    weight: float
    top: tuple
    horizon: tuple
    clouds: float


@dataclasses.dataclass(frozen=True)
class DomainStyle:
    """Constant appearance of one domain plus ranges of capture conditions.

    Ranges are ``(low, high)`` tuples sampled uniformly per image. See the
    module docstring for the four styles.
    """
    name: str
    hsv: tuple = (0.0, 1.0, 1.0)
    material_hsv: dict = dataclasses.field(default_factory=dict)
    textures: dict = dataclasses.field(default_factory=dict)
    window_rgb: tuple = (60, 80, 100)
    window_period: tuple = (2.2, 2.4)
    window_fill: tuple = (0.45, 0.5)
    skies: tuple = (Sky(1.0, (90, 150, 225), (175, 205, 235), 0.2),)
    night_p: float = 0.0
    gain: tuple = (0.9, 1.1)
    night_gain: tuple = (0.3, 0.45)
    wb_red: tuple = (1.0, 1.0)
    wb_blue: tuple = (1.0, 1.0)
    cast: tuple = (1.0, 1.0, 1.0)
    hue_jitter: float = 0.0
    saturation: tuple = (1.0, 1.0)
    contrast: tuple = (1.0, 1.0)
    gamma: tuple = (1.0, 1.0)
    sun: tuple = (0.2, 0.5)
    shadow: tuple = (0.3, 0.5)
    haze_p: float = 0.0
    haze_dist: tuple = (200.0, 400.0)
    vignette: tuple = (0.0, 0.0)
    reflection: tuple = (0.0, 0.0)
    blur: tuple = (0.0, 0.0)
    noise: tuple = (0.0, 0.0)
    chroma_noise: float = 0.3
    sharpen: tuple = (0.0, 0.0)
    jpeg_quality: tuple = None
    hood_p: float = 0.0
    hood_height: tuple = (0.06, 0.1)
    mount_p: float = 0.0
    instance_jitter: float = 0.06
    shift: float = 1.0


@dataclasses.dataclass
class Capture:
    """Per-image capture conditions sampled from a :class:`DomainStyle`."""
    night: bool
    gain: float
    white_balance: np.ndarray
    hue_shift: float
    saturation: float
    contrast: float
    gamma: float
    sun: float
    sun_side: float
    shadow: float
    haze_dist: float
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    clouds: float
    vignette: float
    reflection: float
    blur: float
    noise: float
    sharpen: float
    jpeg_quality: int
    hood: str
    hood_height: float


_T = TextureSpec

STYLES = {
    'gta': DomainStyle(
        name='gta',
        hsv=(0.0, 1.1, 1.0),
        textures={
            'asphalt': _T(0.02, 0.05, 'stripes', 2.6, 0.03),
            'paving': _T(0.02, 0.04, 'tiles', 0.9, 0.12),
            'facade': _T(0.02, 0.05, 'none'),
            'foliage': _T(0.08, 0.12),
            'grass': _T(0.04, 0.10, 'stripes', 1.5, 0.05),
            'metal': _T(0.02, 0.03),
            'glass': _T(0.02, 0.08),
            'cloth': _T(0.03, 0.03),
            'sky': _T(0.005, 0.0),
            'smooth': _T(0.015, 0.02),
        },
        window_rgb=(70, 100, 130), window_period=(2.4, 2.4),
        window_fill=(0.5, 0.5),
        skies=(Sky(0.6, (70, 130, 220), (170, 205, 240), 0.25),
               Sky(0.2, (90, 90, 150), (245, 160, 90), 0.15),
               Sky(0.2, (150, 155, 165), (195, 198, 202), 0.4)),
        gain=(0.75, 1.15), wb_red=(0.9, 1.12), wb_blue=(0.9, 1.12),
        saturation=(1.0, 1.25), contrast=(1.0, 1.2), gamma=(0.9, 1.1),
        sun=(0.1, 0.6), shadow=(0.2, 0.55),
        haze_p=0.35, haze_dist=(120.0, 500.0),
        noise=(0.0, 1.2), blur=(0.0, 0.25),
    ),
    'cityscapes': DomainStyle(
        name='cityscapes',
        hsv=(0.0, 0.8, 1.0),
        material_hsv={
            M.ASPHALT: (10.0, 0.5, 1.2),
            M.PAVING: (-8.0, 2.2, 0.88),
            M.CURB: (0.0, 1.0, 0.85),
            M.FACADE: (12.0, 0.7, 1.0),
            M.FOLIAGE: (18.0, 0.8, 0.85),
            M.GRASS: (14.0, 0.85, 0.9),
            M.CAR_PAINT: (0.0, 0.8, 0.9),
            M.PAINT: (0.0, 0.6, 0.9),
        },
        textures={
            'asphalt': _T(0.05, 0.14),
            'paving': _T(0.06, 0.05, 'tiles', 0.3, 0.3),
            'facade': _T(0.04, 0.08, 'bricks', 0.9, 0.06),
            'foliage': _T(0.16, 0.10),
            'grass': _T(0.1, 0.08),
            'metal': _T(0.04, 0.04, 'bars', 0.25, 0.25),
            'glass': _T(0.03, 0.06),
            'cloth': _T(0.05, 0.04),
            'sky': _T(0.01, 0.0),
            'smooth': _T(0.03, 0.03),
        },
        window_rgb=(55, 62, 66), window_period=(1.8, 2.2),
        window_fill=(0.35, 0.55),
        skies=(Sky(0.8, (200, 208, 214), (226, 229, 230), 0.08),
               Sky(0.2, (150, 175, 200), (210, 220, 226), 0.3)),
        gain=(0.82, 0.98), cast=(0.95, 1.0, 0.93),
        saturation=(0.85, 1.0), contrast=(0.85, 0.95), gamma=(1.05, 1.15),
        sun=(0.02, 0.12), shadow=(0.05, 0.15),
        haze_p=0.8, haze_dist=(300.0, 600.0),
        vignette=(0.2, 0.3), blur=(0.45, 0.7), noise=(1.8, 3.0),
        chroma_noise=0.2, hood_p=1.0, hood_height=(0.07, 0.11),
    ),
    'bdd100k': DomainStyle(
        name='bdd100k',
        hsv=(6.0, 0.85, 0.95),
        material_hsv={
            M.ASPHALT: (25.0, 1.8, 1.15),
            M.PAVING: (0.0, 0.4, 1.05),
            M.FACADE: (-10.0, 0.8, 1.1),
            M.FOLIAGE: (-12.0, 0.9, 0.8),
            M.GRASS: (-18.0, 0.7, 1.0),
            M.CAR_PAINT: (0.0, 0.9, 1.05),
        },
        textures={
            'asphalt': _T(0.1, 0.08, 'stripes', 1.3, 0.06),
            'paving': _T(0.08, 0.1),
            'facade': _T(0.06, 0.1, 'stripes', 0.5, 0.05),
            'foliage': _T(0.12, 0.18),
            'grass': _T(0.1, 0.12),
            'metal': _T(0.06, 0.05),
            'glass': _T(0.05, 0.1),
            'cloth': _T(0.06, 0.05),
            'sky': _T(0.01, 0.0),
            'smooth': _T(0.05, 0.04),
        },
        window_rgb=(95, 105, 115), window_period=(2.8, 2.8),
        window_fill=(0.6, 0.4),
        skies=(Sky(0.7, (165, 185, 210), (215, 212, 200), 0.15),
               Sky(0.3, (120, 160, 215), (200, 210, 220), 0.3)),
        night_p=0.15, gain=(0.85, 1.2), night_gain=(0.22, 0.4),
        wb_red=(0.85, 1.2), wb_blue=(0.8, 1.15),
        saturation=(0.85, 1.05), contrast=(1.2, 1.45), gamma=(0.85, 0.95),
        sun=(0.1, 0.4), shadow=(0.2, 0.45),
        haze_p=0.9, haze_dist=(100.0, 300.0),
        vignette=(0.3, 0.45), reflection=(0.05, 0.15), blur=(0.6, 1.0),
        noise=(2.5, 5.0), chroma_noise=0.5, jpeg_quality=(50, 70),
        hood_p=0.5, hood_height=(0.06, 0.13),
    ),
    'mapillary': DomainStyle(
        name='mapillary',
        hsv=(0.0, 1.35, 1.05),
        material_hsv={
            M.ASPHALT: (-25.0, 2.0, 1.15),
            M.PAVING: (0.0, 0.5, 1.15),
            M.FACADE: (0.0, 1.6, 1.0),
            M.FOLIAGE: (-22.0, 1.3, 1.1),
            M.GRASS: (-26.0, 1.2, 1.1),
        },
        textures={
            'asphalt': _T(0.06, 0.06),
            'paving': _T(0.05, 0.05, 'tiles', 0.5, 0.15),
            'facade': _T(0.04, 0.06, 'none'),
            'foliage': _T(0.2, 0.08),
            'grass': _T(0.14, 0.06),
            'metal': _T(0.04, 0.04),
            'glass': _T(0.03, 0.08),
            'cloth': _T(0.04, 0.04),
            'sky': _T(0.005, 0.0),
            'smooth': _T(0.03, 0.03),
        },
        window_rgb=(40, 60, 90), window_period=(2.0, 2.6),
        window_fill=(0.55, 0.6),
        skies=(Sky(0.75, (40, 100, 200), (150, 195, 240), 0.35),
               Sky(0.25, (120, 135, 160), (190, 200, 215), 0.45)),
        gain=(0.85, 1.25), wb_red=(0.92, 1.1), wb_blue=(0.92, 1.1),
        hue_jitter=8.0, saturation=(1.0, 1.3), contrast=(1.0, 1.35),
        gamma=(0.9, 1.05), sun=(0.2, 0.6), shadow=(0.3, 0.6),
        haze_p=0.3, haze_dist=(200.0, 600.0),
        vignette=(0.0, 0.3), blur=(0.0, 0.4), noise=(1.0, 3.0),
        sharpen=(0.3, 0.9), jpeg_quality=(75, 95),
        hood_p=0.12, hood_height=(0.05, 0.1), mount_p=0.05,
    ),
}


# SYNTHIA: another renderer, the GTA5 scene statistics with a brighter, flatter and
# less saturated look and no ego-vehicle hood (random viewpoints).
STYLES['synthia'] = dataclasses.replace(
    STYLES['gta'], name='synthia', hsv=(0.02, 0.85, 1.08), gain=(0.95, 1.25),
    saturation=(0.8, 1.0), contrast=(0.85, 1.0), gamma=(0.85, 1.0))
#: Source domains: their style is never shifted.
SOURCE_STYLES = ('gta', 'synthia')


def get_style(name, shift=1.0):
    """Return the :class:`DomainStyle` of a domain.

    Args:
        name (str): ``'gta'``, ``'cityscapes'``, ``'bdd100k'`` or
            ``'mapillary'``.
        shift (float): Appearance shift of a target domain: its *global*
            departures from a neutral camera (global hue/saturation/value,
            colour cast, white-balance, gain, saturation, contrast and gamma
            ranges) are multiplied by ``shift`` (1: as listed above, 2:
            twice as far). These are the kind of differences a style
            perturbation can reach; per-material colours, textures, noise,
            blur, haze and the hood stay as they are. The source (``'gta'``)
            is never changed.

    Returns:
        DomainStyle: The style.
    """
    if name not in STYLES:
        raise KeyError(f'No synthetic style named {name!r}; known: '
                       f'{sorted(STYLES)}')
    if not shift >= 0:
        raise ValueError(f'appearance shift must be >= 0, got {shift!r}')
    if name in SOURCE_STYLES or shift == 1.0:
        return STYLES[name]
    return _shifted_style(name, float(shift))


def _away(value, shift, neutral=1.0):
    """Move ``value`` (a number or a tuple of them) ``shift`` times as far from neutral."""
    if isinstance(value, tuple):
        return tuple(_away(v, shift, neutral) for v in value)
    return neutral + (value - neutral) * shift


@lru_cache(maxsize=None)
def _shifted_style(name, shift):
    """A target style with its global appearance departures scaled by ``shift``."""
    style = STYLES[name]
    dh, ds, dv = style.hsv
    return dataclasses.replace(
        style, shift=shift, hsv=(dh * shift, _away(ds, shift), _away(dv, shift)),
        cast=_away(style.cast, shift), wb_red=_away(style.wb_red, shift),
        wb_blue=_away(style.wb_blue, shift), gain=_away(style.gain, shift),
        saturation=_away(style.saturation, shift), contrast=_away(style.contrast, shift),
        gamma=_away(style.gamma, shift), hue_jitter=style.hue_jitter * shift)


def _shift_hsv(rgb, dh, ds, dv):
    """Move one RGB colour (0..1) in HSV: hue by ``dh`` degrees, s/v times."""
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    h = (h + dh / 360.0) % 1.0
    return colorsys.hsv_to_rgb(h, min(s * ds, 1.0), min(v * dv, 1.0))


@lru_cache(maxsize=None)
def palette_table(name, shift=1.0):
    """Build a domain's material palette as a dense table.

    Args:
        name (str): Domain style name.
        shift (float): Appearance shift (see :func:`get_style`).

    Returns:
        tuple: ``(colours, counts)``: ``colours`` is a float32 array
        ``(num_materials, max_variants, 3)`` of RGB in 0..1, ``counts`` the
        number of variants per material (index variants modulo it).
    """
    style = get_style(name, shift)
    n_var = max(len(v) for v in BASE_COLOURS.values())
    colours = np.zeros((len(M), n_var, 3), np.float32)
    counts = np.zeros(len(M), np.int64)
    gh, gs, gv = style.hsv
    for material, variants in BASE_COLOURS.items():
        mh, ms, mv = style.material_hsv.get(material, (0.0, 1.0, 1.0))
        for k, rgb in enumerate(variants):
            rgb = _shift_hsv(np.asarray(rgb) / 255.0, gh, gs, gv)
            colours[material, k] = _shift_hsv(rgb, mh, ms, mv)
        counts[material] = len(variants)
    colours.setflags(write=False)
    return colours, counts


def _uniform(rng, bounds):
    """Draw uniformly from ``(low, high)``."""
    return float(rng.uniform(bounds[0], bounds[1]))


def sample_capture(style, rng):
    """Draw one image's capture conditions from a domain style.

    Args:
        style (DomainStyle): The domain style.
        rng (np.random.Generator): Random source.

    Returns:
        Capture: The sampled conditions.
    """
    night = bool(rng.random() < style.night_p)
    weights = np.array([s.weight for s in style.skies], float)
    sky = style.skies[int(rng.choice(len(weights), p=weights /
                                     weights.sum()))]
    wb = np.array([_uniform(rng, style.wb_red), 1.0,
                   _uniform(rng, style.wb_blue)]) * np.array(style.cast)
    hood, hood_h = 'none', 0.0
    u = rng.random()
    if u < style.hood_p:
        hood, hood_h = 'hood', _uniform(rng, style.hood_height)
    elif u < style.hood_p + style.mount_p:
        hood, hood_h = 'mount', _uniform(rng, style.hood_height) * 0.6
    sky_top, sky_hor = np.array(sky.top, float), np.array(sky.horizon, float)
    if night:
        sky_top, sky_hor = sky_top * 0.12, sky_hor * 0.25 + [20, 15, 5]
    quality = (0 if style.jpeg_quality is None else
               int(rng.integers(style.jpeg_quality[0],
                                style.jpeg_quality[1] + 1)))
    return Capture(
        night=night,
        gain=_uniform(rng, style.night_gain if night else style.gain),
        white_balance=wb,
        hue_shift=float(rng.uniform(-1, 1) * style.hue_jitter),
        saturation=_uniform(rng, style.saturation),
        contrast=_uniform(rng, style.contrast),
        gamma=_uniform(rng, style.gamma),
        sun=0.0 if night else _uniform(rng, style.sun),
        sun_side=1.0 if rng.random() < 0.5 else -1.0,
        shadow=0.0 if night else _uniform(rng, style.shadow),
        haze_dist=(_uniform(rng, style.haze_dist)
                   if rng.random() < style.haze_p else float('inf')),
        sky_top=sky_top / 255.0, sky_horizon=sky_hor / 255.0,
        clouds=sky.clouds,
        vignette=_uniform(rng, style.vignette),
        reflection=_uniform(rng, style.reflection),
        blur=_uniform(rng, style.blur),
        noise=_uniform(rng, style.noise) * (1.6 if night else 1.0),
        sharpen=_uniform(rng, style.sharpen),
        jpeg_quality=quality,
        hood=hood, hood_height=hood_h)
