"""Pruned speed: FLOPs ratio vs measured latency ratio at r = 0.3.

    python benchmarks/pruned_speed.py [--models deeplabv3plus_r50 segformer_b0 segformer_b5]
        [--shape 512 1024] [--repeats 5] [--device cpu|cuda] [--round-to 8]

For each model: build it (random init), time the unpruned model, prune 30 % of
its units (one global step, importance configurable; the structure is what
matters for speed), time the pruned model; the timings of the two models are
interleaved (A, B, A, B, ...) in one process so machine noise hits both alike.
Prints and saves (benchmarks/results/pruned_speed_<device>.json) GFLOPs,
params, median latency and the ratios; the check is
latency_ratio / flops_ratio <= 1.15.
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.model import revert_sync_batchnorm  # noqa: E402

import npdg  # noqa: E402,F401
from npdg.analysis.complexity import segmentor_complexity  # noqa: E402
from npdg.models import convert_mit_attention  # noqa: E402
from npdg.pruning.pruner import UnitPruner  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODELS = {
    'deeplabv3plus_r50': ('configs/npdg/deeplab_gta.py', {}),
    'segformer_b5': ('configs/npdg/segformer_gta.py', {}),
    'segformer_b0': ('configs/npdg/segformer_gta.py', dict(
        backbone=dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
        decode_head=dict(in_channels=[32, 64, 160, 256]))),
}


def build(name, models=None):
    """A random-init model of ``models`` (default :data:`MODELS`), eval mode, per-head MiT."""
    from mmseg.registry import MODELS as REG
    from mmseg.utils import register_all_modules
    register_all_modules()
    path, override = (models or MODELS)[name]
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    cfg.merge_from_dict(dict(model=override))
    torch.manual_seed(0)
    model = revert_sync_batchnorm(REG.build(cfg.model))
    model.init_weights()
    convert_mit_attention(model)
    return model.eval()


def timed(model, x, device):
    if device == 'cuda':
        torch.cuda.synchronize()
    t = time.perf_counter()
    with torch.no_grad():
        model._forward(x)
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - t


def bench(name, shape, repeats, warmup, device, importance, round_to, ratio, batch=1,
          dtype='fp32'):
    """One model's row: GFLOPs, params and median latency, unpruned vs pruned.

    Args:
        batch (int): Images per forward pass.
        dtype (str): 'fp32' or 'fp16' (weights and input in half precision).
    """
    if dtype not in ('fp32', 'fp16'):
        raise ValueError(f"dtype must be 'fp32' or 'fp16', got {dtype!r}")
    base = build(name).to(device)
    pruned = copy.deepcopy(base).cpu()
    pruner = UnitPruner(dict(type=importance), threshold=None, round_to=round_to,
                        trace_shape=(3, 128, 128))
    _, units = pruner.units(pruned)
    total = sum(u.num_units for u in units)
    result = pruner.step(pruned, int(ratio * total))
    pruned = pruned.to(device).eval()
    full = (3, *shape)
    info = {k: segmentor_complexity(m, full) for k, m in (('base', base), ('pruned', pruned))}
    x = torch.rand(batch, *full, device=device) * 255
    if dtype == 'fp16':
        base, pruned, x = base.half(), pruned.half(), x.half()
    for _ in range(warmup):
        timed(base, x, device)
        timed(pruned, x, device)
    times = dict(base=[], pruned=[])
    for _ in range(repeats):
        times['base'].append(timed(base, x, device))
        times['pruned'].append(timed(pruned, x, device))
    lat = {k: statistics.median(v) for k, v in times.items()}
    row = dict(model=name, input=f'{batch}x3x{shape[0]}x{shape[1]}', device=device, dtype=dtype,
               threads=torch.get_num_threads(), importance=importance, round_to=round_to,
               ratio=ratio, units_removed=result.removed, units_total=total,
               gflops_base=info['base']['gflops'], gflops_pruned=info['pruned']['gflops'],
               params_base_m=info['base']['params'] / 1e6,
               params_pruned_m=info['pruned']['params'] / 1e6,
               latency_base_s=lat['base'], latency_pruned_s=lat['pruned'],
               latency_all=times)
    row['flops_ratio'] = row['gflops_pruned'] / row['gflops_base']
    row['params_ratio'] = row['params_pruned_m'] / row['params_base_m']
    row['latency_ratio'] = lat['pruned'] / lat['base']
    row['latency_over_flops'] = row['latency_ratio'] / row['flops_ratio']
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 1024])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--ratio', type=float, default=0.3)
    parser.add_argument('--importance', default='L1Importance')
    parser.add_argument('--round-to', type=int, default=None)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    rows = []
    for name in args.models:
        row = bench(name, args.shape, args.repeats, args.warmup, args.device, args.importance,
                    args.round_to, args.ratio)
        rows.append(row)
        print(f"{name:18s} GFLOPs {row['gflops_base']:.1f} -> {row['gflops_pruned']:.1f} "
              f"(x{row['flops_ratio']:.3f}), params {row['params_base_m']:.1f} M -> "
              f"{row['params_pruned_m']:.1f} M (x{row['params_ratio']:.3f}), latency "
              f"{row['latency_base_s'] * 1e3:.0f} -> {row['latency_pruned_s'] * 1e3:.0f} ms "
              f"(x{row['latency_ratio']:.3f}); latency/FLOPs ratio "
              f"{row['latency_over_flops']:.3f} "
              f"({'ok' if row['latency_over_flops'] <= 1.15 else 'over 1.15'})",
              flush=True)
    out = args.out or osp.join(ROOT, 'benchmarks', 'results',
                               f'pruned_speed_{args.device}.json')
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(dict(args=vars(args), rows=rows,
                       note='FLOPs from mmengine (fvcore-style; skips softmax/norms/elementwise; '
                            'per-head attention counted in math mode)'), f, indent=1)
    print(f'saved {out}')


if __name__ == '__main__':
    main()
