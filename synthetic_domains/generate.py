"""Generate the four synthetic datasets (orchestration and manifest).

Determinism: every image draws its randomness from its own
``np.random.SeedSequence([seed, domain, split, index])``, and file names
from ``SeedSequence([seed, domain, split, NAMES])``, so the output is
byte-identical for a seed whatever the number of worker processes (on the
same software stack: numpy, OpenCV and its PNG/JPEG codecs, Pillow).

Idempotence: ``<out_root>/manifest.json`` records the generation parameters.
A later call with identical parameters finds a complete manifest and returns
it without writing anything. A call with different parameters raises
``FileExistsError`` unless ``overwrite=True``, which deletes the four domain
folders (``gta``, ``cityscapes``, ``bdd100k``, ``mapillary``) and the
manifest, and nothing else. Data that differs only in
:data:`GENERATOR_VERSION` (made by an older generator), and a run that was
interrupted (its manifest is marked incomplete), are regenerated without
asking.
"""
import json
import multiprocessing
import os
import shutil
import time

import cv2
import numpy as np

from .elements import Element, encode_elements
from .layout import add_ego_vehicle, sample_scene
from .raster import rasterize
from .render import render
from .styles import get_style, sample_capture
from .writers import (
    DEFAULT_DOMAINS,
    DOMAINS,
    FORMATS,
    MAPILLARY_LAYOUTS,
    encode_label,
    ensure_dirs,
    image_size,
    plan_paths,
    write_image,
    write_label,
)

#: Bump when the output for given parameters changes.
GENERATOR_VERSION = '1.1'
MANIFEST_NAME = 'manifest.json'
_NAMES_STREAM = 1_000_003
_MISMATCH_STREAM = 1_000_033
# (dw, dh) added to the label size of the injected GTA size mismatches.
_MISMATCH_DELTAS = ((-2, 0), (0, -2), (4, 2), (-4, -2))
_CLASS_BINS = list(range(19)) + [255]


def _resolve_counts(num_images, domains):
    """Turn the ``num_images`` argument into ``{domain: {split: count}}``."""
    counts = {}
    for d in domains:
        fmt = FORMATS[d]
        if num_images is None:
            counts[d] = dict(fmt.default_counts)
        elif isinstance(num_images, int):
            counts[d] = {s: num_images for s in fmt.splits}
        elif isinstance(num_images, dict):
            value = num_images.get(d, fmt.default_counts)
            if isinstance(value, int):
                value = {s: value for s in fmt.splits}
            unknown = set(value) - set(fmt.splits)
            if unknown:
                raise ValueError(f'num_images[{d!r}] has unknown splits '
                                 f'{sorted(unknown)}; {d} has {fmt.splits}')
            counts[d] = {s: int(value.get(s, fmt.default_counts[s]))
                         for s in fmt.splits}
        else:
            raise TypeError('num_images must be None, an int (every split) '
                            'or a dict {domain: int | {split: int}}, got '
                            f'{type(num_images).__name__}')
    if isinstance(num_images, dict):
        unknown = set(num_images) - set(DOMAINS)
        if unknown:
            raise ValueError(f'num_images has unknown domains '
                             f'{sorted(unknown)}; known: {DOMAINS}')
    for d, splits in counts.items():
        for s, n in splits.items():
            if n < 0:
                raise ValueError(f'num_images for {d}/{s} must be >= 0, '
                                 f'got {n}')
    return counts


def _validate(seed, scale, mapillary_layout, gta_size_mismatches, nproc,
              domains, appearance_shift=1.0):
    """Check the scalar arguments of :func:`generate_synthetic_domains`."""
    if not appearance_shift >= 0:
        raise ValueError(f'appearance_shift must be >= 0, got {appearance_shift!r}')
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if not scale > 0:
        raise ValueError(f'scale must be > 0, got {scale!r}')
    if mapillary_layout not in MAPILLARY_LAYOUTS:
        raise ValueError(f'mapillary_layout must be one of '
                         f'{MAPILLARY_LAYOUTS}, got {mapillary_layout!r}')
    if gta_size_mismatches < 0:
        raise ValueError('gta_size_mismatches must be >= 0, got '
                         f'{gta_size_mismatches}')
    if nproc < 1:
        raise ValueError(f'nproc must be >= 1, got {nproc}')
    unknown = set(domains) - set(DOMAINS)
    if unknown or not domains:
        raise ValueError(f'domains must be a non-empty subset of {DOMAINS}, '
                         f'got {domains!r}')


def _read_manifest(path):
    """Load a manifest, or None if there is none."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise RuntimeError(f'Cannot read {path} ({err}); delete it or pass '
                           'overwrite=True') from err


def _clean(out_root):
    """Delete the generator's own outputs (domain folders and manifest)."""
    for d in DOMAINS:
        folder = os.path.join(out_root, d)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
    path = os.path.join(out_root, MANIFEST_NAME)
    if os.path.exists(path):
        os.remove(path)


def _same_but_version(old_params, params):
    """True if only the generator version differs (regenerate silently)."""
    if not isinstance(old_params, dict):
        return False

    def strip(p):
        return {k: v for k, v in p.items() if k != 'generator_version'}

    return strip(old_params) == strip(params)


def _prepare_root(out_root, params, overwrite, log):
    """Decide between skipping, regenerating and refusing.

    Args:
        out_root (str): Output root.
        params (dict): Requested generation parameters.
        overwrite (bool): Regenerate whatever is there.
        log (callable): Progress printer.

    Returns:
        dict | None: The existing manifest when generation can be skipped,
        else None (after removing any previous synthetic data).
    """
    path = os.path.join(out_root, MANIFEST_NAME)
    old = _read_manifest(path)
    present = [d for d in DOMAINS if os.path.exists(os.path.join(out_root,
                                                                 d))]
    if not overwrite and old is not None and old.get('complete'):
        if old.get('params') == params:
            log(f'[synthetic] {out_root}: manifest matches the requested '
                'parameters; skipping generation')
            return old
        if not _same_but_version(old.get('params'), params):
            raise FileExistsError(
                f'{path} was generated with different parameters '
                f'({old.get("params")}); pass overwrite=True (CLI: '
                '--overwrite) to regenerate, or choose another output root')
        log(f'[synthetic] {out_root}: made by generator version '
            f'{old["params"].get("generator_version")}, now '
            f'{params["generator_version"]}; regenerating')
    if not overwrite and old is None and present:
        raise FileExistsError(
            f'{out_root} already holds {present} but no {MANIFEST_NAME}; '
            'pass overwrite=True (CLI: --overwrite) to replace them, or '
            'choose another output root')
    if old is not None or present:
        log(f'[synthetic] {out_root}: removing previous synthetic data')
        _clean(out_root)
    return None


def _plan(params):
    """List one task per image, in a fixed order."""
    seed = params['seed']
    tasks = []
    for di, domain in enumerate(DOMAINS):
        if domain not in params['counts']:
            continue
        for si, split in enumerate(FORMATS[domain].splits):
            count = params['counts'][domain][split]
            names_rng = np.random.default_rng(
                np.random.SeedSequence([seed, di, si, _NAMES_STREAM]))
            paths = plan_paths(domain, split, count, names_rng,
                               params['mapillary_layout'])
            mismatch = {}
            if domain == 'gta':
                mm_rng = np.random.default_rng(
                    np.random.SeedSequence([seed, di, si, _MISMATCH_STREAM]))
                k = min(params['gta_size_mismatches'], count)
                for j, idx in enumerate(sorted(mm_rng.choice(count, k,
                                                             replace=False))):
                    mismatch[int(idx)] = _MISMATCH_DELTAS[
                        j % len(_MISMATCH_DELTAS)]
            for i, (img, lab) in enumerate(paths):
                tasks.append(dict(domain=domain, split=split, key=[seed, di,
                                                                    si, i],
                                  image=img, label=lab, scale=params['scale'],
                                  shift=params.get('appearance_shift', 1.0),
                                  mismatch=mismatch.get(i)))
    return tasks


def render_sample(domain, key, scale, shift=1.0):
    """Render one image and its element map (no files written).

    Args:
        domain (str): Domain key.
        key (list[int]): Seed-sequence entropy of this image.
        scale (float): Size multiplier.
        shift (float): Appearance shift of the targets (see
            :func:`synthetic_domains.styles.get_style`).

    Returns:
        tuple: ``(rgb, element_map, capture, scene)``.
    """
    ss = np.random.SeedSequence(key)
    size_rng, layout_rng, capture_rng, noise_rng = [
        np.random.default_rng(s) for s in ss.spawn(4)]
    width, height = image_size(domain, size_rng, scale)
    scene = sample_scene(layout_rng, width / height)
    style = get_style(domain, shift)
    capture = sample_capture(style, capture_rng)
    if capture.hood != 'none':
        add_ego_vehicle(scene, capture_rng, capture.hood_height,
                        Element.EGO_VEHICLE if capture.hood == 'hood'
                        else Element.CAR_MOUNT)
    layers = rasterize(scene, height, width)
    rgb = render(layers, style, capture, noise_rng)
    return rgb, layers.element_map(), capture, scene


def _run_task(task, out_root):
    """Render and write one image/label pair; return its record."""
    domain = task['domain']
    rgb, elements, capture, scene = render_sample(domain, task['key'],
                                                  task['scale'], task['shift'])
    label = encode_label(domain, elements)
    if task['mismatch'] is not None:
        dw, dh = task['mismatch']
        h, w = label.shape
        label = cv2.resize(label, (w + dw, h + dh),
                           interpolation=cv2.INTER_NEAREST)
    write_image(os.path.join(out_root, task['image']), rgb,
                capture.jpeg_quality or 95)
    write_label(os.path.join(out_root, task['label']), label, domain)
    train_ids = encode_elements(elements, 'cityscapes_train_id')
    hist = np.bincount(train_ids.ravel(), minlength=256)[_CLASS_BINS]
    return dict(domain=domain, split=task['split'], image=task['image'],
                label=task['label'], size=[rgb.shape[1], rgb.shape[0]],
                label_size=[label.shape[1], label.shape[0]],
                kind=scene.kind, hist=hist.tolist())


def _worker(args):
    """Pool entry point: ``args`` = ``(task, out_root)``."""
    return _run_task(*args)


def _worker_init():
    """Keep each worker single-threaded (workers already run in parallel)."""
    cv2.setNumThreads(1)


def _execute(tasks, out_root, nproc, log):
    """Run all tasks (in a pool when ``nproc > 1``), logging per split."""
    total = {}
    for t in tasks:
        total[(t['domain'], t['split'])] = total.get(
            (t['domain'], t['split']), 0) + 1
    args = [(t, out_root) for t in tasks]
    records, done, start = [], {}, time.time()
    if nproc > 1 and len(tasks) > 1:
        method = ('fork' if 'fork' in multiprocessing.get_all_start_methods()
                  else 'spawn')
        pool = multiprocessing.get_context(method).Pool(
            min(nproc, len(tasks)), initializer=_worker_init)
        results = pool.imap(_worker, args, chunksize=4)
    else:
        pool, results = None, map(_worker, args)
    try:
        for rec in results:
            records.append(rec)
            group = (rec['domain'], rec['split'])
            done[group] = done.get(group, 0) + 1
            if done[group] == total[group]:
                log(f'[synthetic] {group[0]}/{group[1]}: {total[group]} '
                    f'images written ({time.time() - start:.1f} s elapsed)')
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return records


def _domain_summary(domain, counts, records, params):
    """Summarise one domain's records for the manifest."""
    fmt = FORMATS[domain]
    recs = [r for r in records if r['domain'] == domain]
    hist = np.sum([r['hist'] for r in recs], axis=0) if recs else \
        np.zeros(len(_CLASS_BINS))
    frac = hist / max(hist.sum(), 1)
    sizes = np.array([r['size'] for r in recs]) if recs else np.zeros((0, 2))
    kinds = {}
    for r in recs:
        kinds[r['kind']] = kinds.get(r['kind'], 0) + 1
    summary = {
        'root': domain,
        'splits': {s: counts[s] for s in fmt.splits},
        'image_ext': fmt.image_ext,
        'label_encoding': fmt.encoding,
        'label_mode': fmt.label_mode,
        'image_size': (list(image_size(domain, None, params['scale']))
                       if fmt.base_size else None),
        'image_size_range': ([sizes.min(0).tolist(), sizes.max(0).tolist()]
                             if len(sizes) else None),
        'scene_kinds': dict(sorted(kinds.items())),
        'train_id_pixel_fraction': {str(c): round(float(f), 6)
                                    for c, f in zip(_CLASS_BINS, frac)},
    }
    if domain == 'gta':
        summary['size_mismatches'] = sorted(
            r['label'] for r in recs if r['size'] != r['label_size'])
    if domain == 'mapillary':
        summary['layout'] = params['mapillary_layout']
    return summary


def _write_json(path, data):
    """Write JSON atomically (temp file + rename)."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)


def generate_synthetic_domains(out_root='data/synthetic', seed=0,
                               num_images=None, scale=1.0,
                               mapillary_layout='v1.2+v2.0',
                               gta_size_mismatches=2, overwrite=False,
                               nproc=1, domains=None, verbose=True,
                               appearance_shift=1.0):
    """Write miniature GTA5, Cityscapes, BDD100K and Mapillary datasets.

    Args:
        out_root (str): Output root; domains go to ``<out_root>/gta``,
            ``cityscapes``, ``bdd100k`` and ``mapillary``.
        seed (int): Random seed; the same seed gives byte-identical files.
        num_images (None | int | dict): Images per split. None: defaults
            (gta 400; cityscapes/bdd100k train 50 + val 150; mapillary
            training 50 + validation 150). An int: that many in every split
            of every domain. A dict ``{domain: int | {split: int}}``
            overrides the defaults of the listed domains/splits.
        scale (float): Multiplies all image sizes (GTA 192x106, Cityscapes
            256x128, BDD100K 224x126, Mapillary 160..256 wide, mostly 4:3).
        mapillary_layout (str): ``'v1.2+v2.0'`` (labels in
            ``<split>/v1.2/labels``, the combined release) or ``'v1.2'``
            (``<split>/labels``, the original v1.2 archive).
        gta_size_mismatches (int): Number of GTA frames whose label PNG gets
            a different size than the image (as in the real data).
        overwrite (bool): Always regenerate: delete the four domain folders
            and the manifest under ``out_root`` first. Without it, data made
            with other parameters (or domain folders without a manifest)
            raise ``FileExistsError``, and a complete manifest with the same
            parameters makes the call a no-op (the files themselves are
            trusted, not re-checked).
        nproc (int): Worker processes; the output does not depend on it.
        domains (Sequence[str], optional): Subset of
            ``('gta', 'cityscapes', 'bdd100k', 'mapillary', 'synthia')``
            (default: the first four, plus SYNTHIA when ``num_images`` has a
            ``'synthia'`` count).
        verbose (bool): Print progress.
        appearance_shift (float): How far the targets' global appearance
            (colour cast, white balance, exposure, saturation, contrast,
            gamma) departs from a neutral camera, as a multiple of their
            listed styles (1: as listed; 2: twice as far). The source is
            unchanged; scenes, labels and file names do not depend on it.
            Recorded in the manifest when it is not 1.

    Returns:
        dict: The manifest (also written to ``<out_root>/manifest.json``).
    """
    if domains is None:  # SYNTHIA only when num_images asks for some
        wanted = isinstance(num_images, dict) and num_images.get('synthia')
        domains = DEFAULT_DOMAINS + (('synthia', ) if wanted else ())
    elif isinstance(domains, str):
        domains = (domains,)
    _validate(seed, scale, mapillary_layout, gta_size_mismatches, nproc,
              tuple(domains), appearance_shift)
    domains = tuple(d for d in DOMAINS if d in set(domains))
    log = print if verbose else (lambda *a, **k: None)
    params = {
        'generator_version': GENERATOR_VERSION,
        'seed': int(seed),
        'scale': float(scale),
        'counts': _resolve_counts(num_images, domains),
        'mapillary_layout': mapillary_layout,
        'gta_size_mismatches': int(gta_size_mismatches),
    }
    if appearance_shift != 1.0:  # absent at 1: older manifests stay valid
        params['appearance_shift'] = float(appearance_shift)
    out_root = os.fspath(out_root)
    existing = _prepare_root(out_root, params, overwrite, log)
    if existing is not None:
        return existing
    os.makedirs(out_root, exist_ok=True)
    manifest_path = os.path.join(out_root, MANIFEST_NAME)
    manifest = {'generator': 'synthetic_domains', 'version': GENERATOR_VERSION,
                'complete': False, 'params': params}
    _write_json(manifest_path, manifest)
    tasks = _plan(params)
    ensure_dirs(out_root, [p for t in tasks for p in (t['image'],
                                                       t['label'])])
    start = time.time()
    records = _execute(tasks, out_root, nproc, log)
    manifest['domains'] = {
        d: _domain_summary(d, params['counts'][d], records, params)
        for d in domains}
    manifest['complete'] = True
    _write_json(manifest_path, manifest)
    log(f'[synthetic] {len(records)} images in {time.time() - start:.1f} s '
        f'-> {out_root}')
    return manifest
