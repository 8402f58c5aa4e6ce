"""How many statistics batches make NPDG's unit ranking stable?

    python benchmarks/stats_stability.py [--checkpoint CKPT] [--train-iters 300]

NPDG's sparsity weights come from per-unit scores (U, B, w) estimated on a
few source images rendered in K styles. This script measures how repeatable
that estimate is: two independent streams of training batches (different
images, style draws and sampled positions) each give an estimate from their
first n batches (n = 1, 2, 4, ...), and the per-layer Spearman rank
correlation between the two estimates is reported (median over layers, and
the share of layers at >= 0.8), for random and for adversarial scoring
styles. It also reports the median within-layer rank correlation of U and B
(when they are anti-correlated, w = lam U + (1 - lam) B mostly follows the
larger weight).

Without ``--checkpoint`` it first trains the demo baseline
(configs/demo/deeplab_r18_synthetic.py) for ``--train-iters`` iterations:
a model in the middle of the demo's sparse phase. Only source images are used.
Saves benchmarks/results/stats_stability.{json,md}.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import torch  # noqa: E402

import npdg  # noqa: E402,F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = 'configs/demo/deeplab_r18_synthetic.py'


def spearman(a, b):
    """Spearman rank correlation of two 1-D tensors (ties broken by order)."""
    def ranks(x):
        r = torch.empty(len(x), dtype=torch.float64)
        r[torch.argsort(x)] = torch.arange(len(x), dtype=torch.float64)
        return r - r.mean()
    ra, rb = ranks(a), ranks(b)
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den > 0 else float('nan')


def agreement(scores_a, scores_b, key='w', min_units=3):
    """Per-layer Spearman of two estimates (layers with >= ``min_units`` units)."""
    return {n: spearman(scores_a[n][key], scores_b[n][key]) for n in scores_a
            if n in scores_b and len(scores_a[n][key]) >= min_units}


def summarise(per_layer):
    """Median over layers and the share of layers at >= 0.8."""
    values = [v for v in per_layer.values() if v == v]
    return dict(median=statistics.median(values),
                share_ge_0_8=sum(v >= 0.8 for v in values) / len(values), layers=len(values))


def stream(cfg, seed, count):
    """``count`` raw training batches of 2 images (the hook's content images)."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(dict(
        cfg.train_dataloader, batch_size=2, num_workers=0, persistent_workers=False,
        sampler=dict(type='InfiniteSampler', shuffle=True, seed=seed)), seed=seed)
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == count:
            return batches
    return batches


def curve(model, streams, sizes, styles, lam):
    """Agreement of the two streams' estimates at every size, for one style mode."""
    from npdg.hooks.sensitivity_statistics_hook import SensitivityStatisticsHook
    rows = []
    for n in sizes:
        a, b = (SensitivityStatisticsHook(num_images=2, num_styles=4, num_positions=256,
                                          lam=lam, styles=styles, seed=1000 + k)
                .score_batches(model, batches[:n]) for k, batches in enumerate(streams))
        row = dict(batches=n, images=2 * n)
        for key in ('w', 'unary', 'binary'):
            row[key] = summarise(agreement(a, b, key))
        row['u_vs_b'] = statistics.median(
            spearman(a[m]['unary'], a[m]['binary']) for m in a if len(a[m]['unary']) >= 3)
        rows.append(row)
    return rows


def train_checkpoint(config, overrides, iters, work_dir):
    """Train ``config`` for ``iters`` iterations; return its checkpoint."""
    from npdg.apis import experiment
    cfg = experiment.load_config(config, dict(overrides, max_iters=iters))
    cfg.default_hooks.checkpoint.interval = iters
    return experiment.train(experiment.without_validation(cfg), work_dir)


def write(result, out):
    """JSON and a Markdown table."""
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out + '.json', 'w') as f:
        json.dump(result, f, indent=1)
    lines = ['# Rank agreement of two independent NPDG statistics estimates', '',
             f'Model: {result["checkpoint"]}; 2 images x K=4 styles x 256 positions per batch; '
             f'lam={result["lam"]}. Median over layers of the per-layer Spearman correlation '
             'between two estimates from disjoint batches (share of layers at >= 0.8 in '
             'brackets). u_vs_b: median within-layer Spearman(U, B) of one estimate.', '',
             '| styles | batches | images | w | U | B | u_vs_b |', '|---|---|---|---|---|---|---|']
    for styles, rows in result['curves'].items():
        for r in rows:
            cells = [f'{r[k]["median"]:.2f} ({r[k]["share_ge_0_8"] * 100:.0f} %)'
                     for k in ('w', 'unary', 'binary')]
            lines.append(f'| {styles} | {r["batches"]} | {r["images"]} | ' + ' | '.join(cells)
                         + f' | {r["u_vs_b"]:.2f} |')
    lines += ['', f'Command: `{result["command"]}` ({result["seconds"]:.0f} s).', '']
    with open(out + '.md', 'w') as f:
        f.write('\n'.join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--data-root', default=None,
                        help='root of the synthetic domains (default: the config\'s)')
    parser.add_argument('--train-iters', type=int, default=300)
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 2, 4, 8, 16, 32])
    parser.add_argument('--styles', nargs='+', default=['random', 'adversarial'])
    parser.add_argument('--lam', type=float, default=0.4)
    parser.add_argument('--out', default=osp.join('benchmarks', 'results', 'stats_stability'))
    args = parser.parse_args(argv)
    for key in ('checkpoint', 'out', 'data_root'):  # paths given from the caller's folder
        if getattr(args, key):
            setattr(args, key, osp.abspath(getattr(args, key)))
    os.chdir(ROOT)
    from npdg.apis import experiment
    from npdg.compat import flush_denormals
    from npdg.utils.model import build_segmentor
    flush_denormals()
    t0 = time.time()
    overrides = dict(syn_root=args.data_root) if args.data_root else {}
    ckpt = args.checkpoint or train_checkpoint(args.config, overrides, args.train_iters,
                                               'work_dirs/stats_stability')
    cfg = experiment.load_config(args.config, overrides)
    model = build_segmentor(cfg, ckpt).eval()
    sizes = sorted(set(args.sizes))
    streams = [stream(cfg, seed, sizes[-1]) for seed in (11, 12)]
    curves = {}
    for styles in args.styles:
        curves[styles] = curve(model, streams, sizes, styles, args.lam)
        for r in curves[styles]:
            print(f'[stats_stability] {styles:11s} {r["batches"]:3d} batches: w '
                  f'{r["w"]["median"]:.2f} U {r["unary"]["median"]:.2f} '
                  f'B {r["binary"]["median"]:.2f} U-vs-B {r["u_vs_b"]:.2f}', flush=True)
    result = dict(checkpoint=osp.relpath(ckpt, ROOT) if ckpt.startswith(ROOT) else ckpt,
                  config=args.config, lam=args.lam, curves=curves,
                  command='python benchmarks/stats_stability.py ' + ' '.join(
                      sys.argv[1:] if argv is None else argv),
                  seconds=time.time() - t0)
    write(result, args.out)
    print(f'[stats_stability] wrote {args.out}.md ({result["seconds"]:.0f} s)')
    return result


if __name__ == '__main__':
    main()
