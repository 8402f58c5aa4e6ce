"""CPU demo: synthetic GTA5 -> synthetic Cityscapes / BDD100K / Mapillary.

    python tools/demo.py

Generates the synthetic domains if absent (data/synthetic), converts them with
the real converters, and trains three runs with one recipe on synthetic GTA5:
DeepLabV3+ on EfficientNet-Lite0 initialised from ImageNet (source-only), the
same with NPDG's style perturbation (unpruned), and NPDG (style perturbation,
sensitivity statistics, reweighted sparse training, pruning to half the
FLOPs, fine-tuning). Each is tested on the three synthetic targets and on
held-out synthetic GTA5. While a run trains the console shows one progress
line for it (full logs in its work dir; --verbose shows them); the demo ends
with mIoU per target and mean, GFLOPs, parameters and latency, and writes
work_dirs/demo/summary.json (baseline at the top level, NPDG under "npdg",
with the pruned checkpoint's path) and work_dirs/demo/miou_vs_gflops.png.
``--model r18`` runs the older demo (a small ResNet-18 from scratch). A
killed run picks up from its last checkpoint.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmengine.config import DictAction  # noqa: E402

import npdg  # noqa: E402,F401
from npdg.apis.demo import DEFAULT_MODEL, METHODS, MODELS, run_demo  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='npdg CPU demo on synthetic domains')
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--seed', type=int, default=0, help='data generator seed')
    parser.add_argument('--nproc', type=int, default=2)
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS),
                        help='which runs to make: source-only baseline, the same perturbation '
                        'as NPDG without pruning (perturb), NPDG')
    parser.add_argument('--model', default=DEFAULT_MODEL, choices=list(MODELS),
                        help='effl0: EfficientNet-Lite0 from ImageNet (default); r18: a small '
                        'ResNet-18 from scratch')
    parser.add_argument('--verbose', action='store_true',
                        help="mmengine's log lines on the console instead of progress lines")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides for the demo training configs')
    return parser.parse_args()


def main():
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = parse_args()
    from npdg.compat import flush_denormals
    flush_denormals()  # CPU speed
    run_demo(args.data_root, args.work_dir, args.seed, args.cfg_options, args.nproc,
             args.methods, model=args.model, quiet=not args.verbose)


if __name__ == '__main__':
    main()
