"""Count a segmentor's FLOPs and parameters at a stated input size.

Example:
    python tools/get_flops.py configs/npdg/deeplab_gta.py [CHECKPOINT] --shape 512 1024

Uses mmengine's counter (fvcore-style) on the inference path (backbone, neck,
decode head; no auxiliary head, no sliding window). The counter skips some ops
(e.g. scaled_dot_product_attention, softmax, norms, elementwise), so
transformer FLOPs are undercounted; the skipped ops are listed in the output.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import npdg  # noqa: E402,F401
from npdg.analysis.complexity import format_complexity, segmentor_complexity  # noqa: E402
from npdg.utils.config import load_config  # noqa: E402
from npdg.utils.model import build_segmentor  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Get a segmentor\'s FLOPs and params')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (e.g. a pruned one)')
    parser.add_argument('--shape', type=int, nargs='+', default=[512, 1024],
                        help='input image size: H W (or one number for a square)')
    parser.add_argument('--out', help='also write the figures to this JSON file')
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    h, w = (args.shape * 2)[:2] if len(args.shape) == 1 else args.shape[:2]
    cfg = load_config(args.config, args.cfg_options, work_dir='/tmp')
    model = build_segmentor(cfg, args.checkpoint)
    info = segmentor_complexity(model, input_shape=(3, h, w))
    print(format_complexity(info))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(info, f, indent=2, default=str)


if __name__ == '__main__':
    main()
