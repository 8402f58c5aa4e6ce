"""Write the miniature synthetic GTA5 / Cityscapes / BDD100K / Mapillary sets.

Usage (from the repository root)::

    python tools/make_synthetic_domains.py                 # data/synthetic
    python tools/make_synthetic_domains.py --out /tmp/syn --seed 1 --scale 2
    python tools/make_synthetic_domains.py --num-per-split 6 --nproc 1

Re-running with the same parameters is a no-op (the manifest matches);
different parameters need ``--overwrite``. See
``synthetic_domains.generate_synthetic_domains`` for the details.
"""
import argparse
import os
import sys

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import npdg  # noqa: E402,F401  (compat shims before anything from mmseg)
from synthetic_domains import (  # noqa: E402
    DOMAINS,
    FORMATS,
    generate_synthetic_domains,  # noqa: E402
)
from synthetic_domains.writers import DEFAULT_DOMAINS  # noqa: E402

# CLI flag -> (domain, split)
_COUNT_FLAGS = {
    'num_gta': ('gta', 'all'),
    'num_cityscapes_train': ('cityscapes', 'train'),
    'num_cityscapes_val': ('cityscapes', 'val'),
    'num_bdd_train': ('bdd100k', 'train'),
    'num_bdd_val': ('bdd100k', 'val'),
    'num_mapillary_train': ('mapillary', 'training'),
    'num_mapillary_val': ('mapillary', 'validation'),
    'num_synthia': ('synthia', 'all'),  # SYNTHIA is made only when asked for
}


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments (default ``sys.argv[1:]``).

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/synthetic',
                   help='output root (default: data/synthetic)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--scale', type=float, default=1.0,
                   help='multiplies all image sizes (default 1.0)')
    p.add_argument('--num-per-split', type=int, default=None,
                   help='images in every split of every domain (overridden '
                   'by the per-split flags below)')
    for flag, (domain, split) in _COUNT_FLAGS.items():
        p.add_argument('--' + flag.replace('_', '-'), type=int, default=None,
                       help=f'images in {domain}/{split} (default '
                       f'{FORMATS[domain].default_counts[split]})')
    p.add_argument('--mapillary-layout', default='v1.2+v2.0',
                   choices=['v1.2+v2.0', 'v1.2'],
                   help="'v1.2+v2.0': labels in <split>/v1.2/labels "
                   "(default); 'v1.2': <split>/labels")
    p.add_argument('--gta-size-mismatches', type=int, default=2,
                   help='GTA frames whose label size differs (default 2)')
    p.add_argument('--appearance-shift', type=float, default=1.0,
                   help="scale of the targets' global appearance departures "
                   '(cast, white balance, exposure, saturation, contrast, '
                   'gamma); 1 = as designed (default), 2 = twice as far')
    p.add_argument('--domains', nargs='+', default=None, choices=DOMAINS,
                   help='generate only these domains (default: gta, cityscapes, bdd100k, '
                        'mapillary; synthia too with --num-synthia)')
    p.add_argument('--nproc', type=int, default=min(os.cpu_count() or 1, 4),
                   help='worker processes (output does not depend on it)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace synthetic data made with other parameters')
    p.add_argument('--quiet', action='store_true')
    return p.parse_args(argv)


def build_counts(args):
    """Build the ``num_images`` argument from the count flags."""
    if args.num_per_split is None and all(
            getattr(args, f) is None for f in _COUNT_FLAGS):
        return None
    counts = {}
    wanted = DEFAULT_DOMAINS + (('synthia', ) if args.num_synthia is not None or
                                'synthia' in (args.domains or ()) else ())
    for d in wanted:
        fmt = FORMATS[d]
        counts[d] = {s: (args.num_per_split if args.num_per_split is not None
                         else fmt.default_counts[s]) for s in fmt.splits}
    for flag, (domain, split) in _COUNT_FLAGS.items():
        if getattr(args, flag) is not None:
            counts[domain][split] = getattr(args, flag)
    return counts


def main(argv=None):
    """Entry point."""
    args = parse_args(argv)
    manifest = generate_synthetic_domains(
        args.out, seed=args.seed, num_images=build_counts(args),
        scale=args.scale, mapillary_layout=args.mapillary_layout,
        gta_size_mismatches=args.gta_size_mismatches,
        overwrite=args.overwrite, nproc=args.nproc, domains=args.domains,
        verbose=not args.quiet, appearance_shift=args.appearance_shift)
    if not args.quiet:
        for d in DOMAINS:
            if d in manifest['domains']:
                print(f'  {d:<11} {manifest["domains"][d]["splits"]}')


if __name__ == '__main__':
    main()
