"""Synthetic street-scene domains: miniature GTA5, Cityscapes, BDD100K and
Mapillary Vistas, written in each real dataset's raw layout and label
encoding.

The project cannot download the real datasets, so
:func:`generate_synthetic_domains` writes small stand-ins that the real
converters, dataset classes, configs and a CPU demo run on (train on
synthetic GTA5, test on the other three); they are also the test data.

What is shared: every image is a street scene drawn from ONE layout
distribution (:mod:`.layout`): a perspective camera over a road with lanes,
lane markings, crosswalks, manholes, bike lanes and parking strips;
sidewalks with curbs; building facades; walls, fences, hedges and guard
rails; vegetation, terrain and distant mountains; poles, street lights,
traffic lights and signs (front and back, with frames); cars, trucks, buses,
caravans, trailers, trams and trains on bridges; pedestrians, bicyclists and
motorcyclists, parked two-wheelers and street furniture; objects shrink
towards the horizon. Scenes are laid out in an internal fine-grained element
enumeration (:mod:`.elements`) and encoded per dataset: Cityscapes label ids
(GTA5 palettised, Cityscapes grayscale), train ids (BDD100K) and the 66
Mapillary v1.2 classes (palettised), with fine Mapillary classes (lane
marking, crosswalk, curb, curb cut, bike lane, sign back, street light, ...)
so both published 66 -> 19 mappings differ.

What differs is mostly appearance (:mod:`.styles`, :mod:`.render`): each
domain has its own palette (per-material hue/saturation/value shifts),
textures (noise, cobbles, bricks, window grids), lighting and weather
(sun, shadows, haze, night), camera (white balance, contrast, gamma,
vignette, windshield glare, blur, sensor noise, sharpening), file format
(PNG, or JPEG of domain-specific quality) and image size/aspect: GTA5
192x106 (varied game lighting), Cityscapes 256x128 (overcast, desaturated,
green-grey, ego hood), BDD100K 224x126 (dash cam: warm, contrasty, noisy,
blurred, hazy, some night frames, low-quality JPEG), Mapillary 160..256 wide
and mostly 4:3 (vivid phone photos, sharpened, varied cameras). ``scale``
multiplies every size. The layout is the same, so the shift is one a
style-perturbation method can close; it is strong enough that a model
trained on synthetic GTA5 scores clearly lower on the other three.

Entry point: :func:`generate_synthetic_domains` (CLI:
``python tools/make_synthetic_domains.py``).
"""
from .generate import GENERATOR_VERSION, generate_synthetic_domains
from .writers import DOMAINS, FORMATS

__all__ = ['generate_synthetic_domains', 'GENERATOR_VERSION', 'DOMAINS',
           'FORMATS']
