"""CPU demo: synthetic GTA5 -> synthetic Cityscapes / BDD100K / Mapillary.

    python tools/demo.py

Generates the synthetic domains if absent (data/synthetic), converts them with
the real converters, trains a small DeepLabV3+ (ResNet-18) on synthetic GTA5,
trains NPDG (style perturbation, sensitivity statistics, reweighted sparse
training, pruning at r = 0.3, fine-tuning) with the same recipe, tests both on
the three synthetic targets and on held-out synthetic GTA5, and prints mIoU per
target and mean, GFLOPs, parameters and latency. Writes
work_dirs/demo/summary.json (baseline at the top level, NPDG under "npdg",
with the pruned checkpoint's path). A killed run picks up from its last
checkpoint.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmengine.config import DictAction  # noqa: E402

import npdg  # noqa: E402,F401
from npdg.apis.demo import METHODS, run_demo  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='npdg CPU demo on synthetic domains')
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--seed', type=int, default=0, help='data generator seed')
    parser.add_argument('--nproc', type=int, default=2)
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS),
                        help='which runs to make: source-only baseline, the same perturbation '
                        'as NPDG without pruning (perturb), NPDG')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides for the demo training configs')
    return parser.parse_args()


def main():
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = parse_args()
    from npdg.compat import flush_denormals
    flush_denormals()  # CPU speed
    run_demo(args.data_root, args.work_dir, args.seed, args.cfg_options, args.nproc,
             args.methods)


if __name__ == '__main__':
    main()
