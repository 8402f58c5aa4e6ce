"""Convert GTA5 label ids to Cityscapes train ids.

Usage (from the repository root)::

    python tools/dataset_converters/gta.py data/gta --nproc 8
    python tools/dataset_converters/gta.py data/gta --split-mat split.mat

Writes ``labels/<name>_labelTrainIds.png`` and ``skipped_frames.txt`` (frames
with size mismatches or missing files) in the GTA5 root; with ``--split-mat``
also the official ``train.txt`` / ``val.txt`` / ``test.txt`` name lists.
"""
import argparse
import sys

import npdg  # noqa: F401  (compat shims before mmseg/mmengine)
from npdg.converters.common import run_converter
from npdg.converters.gta import convert_gta, write_gta_split_lists


def parse_args(argv=None):
    """Parse command-line arguments.

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='GTA5 label ids -> Cityscapes train ids.')
    parser.add_argument('root', help='GTA5 root holding images/ and labels/')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes (default 1)')
    parser.add_argument('--overwrite', action='store_true',
                        help='redo frames whose output exists')
    parser.add_argument('--split-mat', default=None,
                        help='official GTA5 split.mat: also write '
                             'train.txt/val.txt/test.txt in the root')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the conversion and print its summary.

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        int: Exit status.
    """
    args = parse_args(argv)

    def convert():
        if args.split_mat:
            counts = write_gta_split_lists(args.root, args.split_mat)
            print('Split lists: ' + ', '.join(
                f'{split}.txt ({n})' for split, n in counts.items()))
        return convert_gta(args.root, nproc=args.nproc, overwrite=args.overwrite)

    return run_converter(convert)

if __name__ == '__main__':
    sys.exit(main())
