"""Convert Cityscapes ``*_gtFine_labelIds.png`` to ``*_labelTrainIds.png``.

Usage (from the repository root)::

    python tools/dataset_converters/cityscapes.py data/cityscapes --nproc 8
    python tools/dataset_converters/cityscapes.py data/cityscapes --splits val
"""
import argparse
import sys

import npdg  # noqa: F401  (compat shims before mmseg/mmengine)
from npdg.converters.cityscapes import convert_cityscapes
from npdg.converters.common import run_converter


def parse_args(argv=None):
    """Parse command-line arguments.

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Cityscapes label ids -> train ids.')
    parser.add_argument('root', help='Cityscapes root holding gtFine/')
    parser.add_argument('--splits', nargs='+', default=None,
                        help='splits to convert (default: train and val, '
                             'those that exist)')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes (default 1)')
    parser.add_argument('--overwrite', action='store_true',
                        help='redo files whose output exists')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the conversion and print its summary.

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        int: Exit status.
    """
    args = parse_args(argv)
    return run_converter(lambda: convert_cityscapes(args.root, splits=args.splits,
                                                    nproc=args.nproc,
                                                    overwrite=args.overwrite))

if __name__ == '__main__':
    sys.exit(main())
