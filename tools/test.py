"""Test a checkpoint: per-target mIoU, their mean, GFLOPs and parameters.

Example:
    python tools/test.py configs/npdg/deeplab_gta.py work_dirs/deeplab_gta/iter_40000.pth
The metrics (including ``gflops``/``params_m`` from ``ModelComplexityHook``)
are printed and written to ``<work_dir>/<timestamp>/<timestamp>.json``.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmengine.runner import Runner  # noqa: E402
from mmseg.registry import RUNNERS  # noqa: E402

import npdg  # noqa: E402,F401
from npdg.utils.config import add_common_args, ensure_hook, load_config  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentor (npdg)')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='directory to save predictions for offline evaluation')
    parser.add_argument('--show-dir', help='directory to save painted predictions')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--flops-shape', type=int, nargs='+',
                        help='input H W for the FLOPs count (default: the config\'s '
                        'ModelComplexityHook input_shape)')
    add_common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def ensure_complexity_hook(cfg, flops_shape=None):
    """Make sure the test run reports FLOPs/params (adds the hook if absent)."""
    for hook in ensure_hook(cfg, 'ModelComplexityHook'):
        if flops_shape:
            h, w = (flops_shape * 2)[:2] if len(flops_shape) == 1 else flops_shape[:2]
            hook['input_shape'] = (3, h, w)


def enable_visualization(cfg, show_dir):
    """Turn on mmseg's visualization hook to paint predictions."""
    vis = cfg.default_hooks.get('visualization')
    if vis is None:
        raise KeyError('--show-dir needs default_hooks.visualization '
                       '(type="SegVisualizationHook") in the config.')
    vis['draw'] = True
    cfg.visualizer['save_dir'] = show_dir


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint {args.checkpoint!r} does not exist.')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    ensure_complexity_hook(cfg, args.flops_shape)
    ensure_hook(cfg, 'PrunedCheckpointHook')  # rebuild pruned models, load strictly
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    if args.tta:
        missing = [k for k in ('tta_pipeline', 'tta_model') if k not in cfg]
        if missing:
            raise KeyError(f'--tta needs {" and ".join(missing)} in {args.config} (see '
                           'configs/_base_/default_runtime.py for both).')
        # MultiTargetDataset applies it to every target.
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.test()


if __name__ == '__main__':
    main()
