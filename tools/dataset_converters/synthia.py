"""Convert SYNTHIA (RAND-CITYSCAPES) class ids to Cityscapes train ids.

Usage (from the repository root)::

    python tools/dataset_converters/synthia.py data/synthia --nproc 8 --val-fraction 0.15

Writes ``GT/LABELS/<name>_labelTrainIds.png`` and ``skipped_frames.txt`` in the SYNTHIA
root; with ``--val-fraction`` also ``train.txt`` / ``val.txt`` (the last frames by name
held out as source validation data: SYNTHIA has no official split).
"""
import argparse
import sys

import npdg  # noqa: F401  (compat shims before mmseg/mmengine)
from npdg.converters.common import run_converter
from npdg.converters.synthia import convert_synthia, write_holdout_lists


def parse_args(argv=None):
    """Parse command-line arguments."""
    parser = argparse.ArgumentParser(description='SYNTHIA class ids -> Cityscapes train ids.')
    parser.add_argument('root', help='SYNTHIA root holding RGB/ and GT/LABELS/')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes (default 1)')
    parser.add_argument('--overwrite', action='store_true',
                        help='redo frames whose output exists')
    parser.add_argument('--val-fraction', type=float, default=None,
                        help='also write train.txt/val.txt holding out this share of frames')
    args = parser.parse_args(argv)
    if args.val_fraction is not None and not 0 < args.val_fraction < 1:
        parser.error(f'--val-fraction must be in (0, 1), got {args.val_fraction}')
    return args


def main(argv=None):
    """Run the conversion and print its summary; returns the exit status."""
    args = parse_args(argv)

    def convert():
        summary = convert_synthia(args.root, nproc=args.nproc, overwrite=args.overwrite)
        if args.val_fraction is not None:
            n_train, n_val = write_holdout_lists(args.root, args.val_fraction)
            summary.notes.append(f'Split lists: train.txt ({n_train}), val.txt ({n_val}).')
        return summary

    return run_converter(convert)

if __name__ == '__main__':
    sys.exit(main())
