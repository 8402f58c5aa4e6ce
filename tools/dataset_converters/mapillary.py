"""Convert Mapillary Vistas v1.2 labels (66 classes) to the 19 train ids.

Usage (from the repository root)::

    python tools/dataset_converters/mapillary.py data/mapillary
    python tools/dataset_converters/mapillary.py data/mapillary \
        --mapping wide --splits validation training --nproc 8

Writes ``<root>/<split>/labels_cs19_<mapping>/*.png`` and ``mapping.json``.
Both layouts are detected: ``<split>/v1.2/labels`` (combined v1.2+v2.0
release) and ``<split>/labels`` (original v1.2 archive).
"""
import argparse
import sys

import npdg  # noqa: F401  (compat shims before mmseg/mmengine)
from npdg.converters.common import ConverterInputError
from npdg.converters.mapillary import convert_mapillary
from npdg.datasets.label_maps import MAPILLARY_MAPPING_NAMES


def parse_args(argv=None):
    """Parse command-line arguments.

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Mapillary Vistas v1.2 -> 19 Cityscapes train ids.')
    parser.add_argument('root', help='Mapillary root holding validation/')
    parser.add_argument('--mapping', default='narrow',
                        choices=MAPILLARY_MAPPING_NAMES,
                        help='66 -> 19 mapping (default narrow, the '
                             'HRDA-family one; wide is the Rein-family one)')
    parser.add_argument('--splits', nargs='+', default=['validation'],
                        help='split folders (default: validation)')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes (default 1)')
    parser.add_argument('--overwrite', action='store_true',
                        help='redo files whose output exists')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the conversion and print its summaries.

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        int: Exit status.
    """
    args = parse_args(argv)
    try:
        summaries = convert_mapillary(args.root, mapping=args.mapping,
                                      splits=args.splits, nproc=args.nproc,
                                      overwrite=args.overwrite)
    except ConverterInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    for summary in summaries.values():
        print(summary.format())
    return 0


if __name__ == '__main__':
    sys.exit(main())
