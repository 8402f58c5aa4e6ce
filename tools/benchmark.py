"""Measure a segmentor's inference latency (warm-up, then median of repeats).

Example:
    python tools/benchmark.py configs/npdg/deeplab_gta.py CHECKPOINT --shape 512 1024

Runs the inference path (backbone, neck, decode head) at batch 1 under
``torch.no_grad()`` and prints median/min/mean latency and throughput.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch  # noqa: E402

import npdg  # noqa: E402,F401
from npdg.analysis.latency import segmentor_latency  # noqa: E402
from npdg.utils.config import load_config  # noqa: E402
from npdg.utils.model import build_segmentor  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark a segmentor\'s latency')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (e.g. a pruned one)')
    parser.add_argument('--shape', type=int, nargs='+', default=[512, 1024],
                        help='input image size: H W (or one number for a square)')
    parser.add_argument('--warmup', type=int, default=5, help='untimed warm-up runs')
    parser.add_argument('--repeats', type=int, default=20, help='timed runs')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--out', help='also write the figures to this JSON file')
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (args.shape * 2)[:2] if len(args.shape) == 1 else args.shape[:2]
    cfg = load_config(args.config, args.cfg_options, work_dir='/tmp')
    model = build_segmentor(cfg, args.checkpoint, device=args.device)
    stats = segmentor_latency(model, input_shape=(3, h, w), warmup=args.warmup,
                              repeats=args.repeats)
    print(f'input 1x3x{h}x{w} on {args.device} ({torch.get_num_threads()} threads): '
          f'median {stats["median"] * 1000:.1f} ms, min {stats["min"] * 1000:.1f} ms, '
          f'mean {stats["mean"] * 1000:.1f} ms over {args.repeats} runs '
          f'after {args.warmup} warm-up; {1.0 / stats["median"]:.2f} img/s')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(stats, input_shape=[1, 3, h, w], device=args.device), f, indent=2)


if __name__ == '__main__':
    main()
