"""Compare pruning criteria for domain generalization in one command.

    python tools/compare.py                          # every arm, 2 budgets, seeds 0 1 2
    python tools/compare.py --seeds 0                # one seed
    python tools/compare.py --arms l1 taylor dss --budgets flops50
    python tools/compare.py --list                   # arms, budgets, configs; no training

Regimes (``--regime``; the studies are data in npdg/apis/studies.py):

* ``effl0`` (default; docs/results.md "ImageNet regime"): DeepLabV3+ on EfficientNet-Lite0
  initialised from the official ImageNet weights and adapted to the source once
  (configs/bench_effl0/pretrain_source.py, 3000 iterations); 300 iterations per arm
  on data/synthetic_bench; budgets ``flops75`` and ``flops50`` (0.75x and 0.5x
  inference FLOPs); pruned arms prune at iteration 150.
* ``r18h`` (docs/results.md "from-scratch regime"): the half-width ResNet-18 warm-started
  on the source (configs/bench/pretrain_source.py, NOT ImageNet); budgets ``r30``
  and ``flops50``; pruned arms prune at iteration 200 of 600.

Arms: the unpruned controls ``source_only`` and ``perturb_only`` (same style
perturbation as every pruned arm) and the criteria (``--list`` prints them with
their configs). ``--bars`` runs the regime's sanity runs instead (source-only
trained 1.5x longer, the per-target oracles and, in the ImageNet regime, plain L1
at 0.75x FLOPs without the perturbation) and writes bars.md beside the table.

Each run is tested at its last iteration on synthetic Cityscapes, BDD100K and
Mapillary (nothing is chosen on them), the held-out source frames and the
label-free pseudo-target. Runs are cached by config content and code version
(``--work-dir``): a killed comparison continues where it stopped (finished runs
are reused, the interrupted one resumes from its last checkpoint).

Writes to ``--out-dir`` (default benchmarks/results/compare): ``results.csv``
(one row per run), ``results.md`` (mean +- std over seeds per arm and budget:
per-target and mean target mIoU, held-out source and pseudo-target mIoU, GFLOPs,
params, latency, train time, prune-step time), ``results.json``, and plots:
``miou_vs_gflops.png`` (mean target mIoU against GFLOPs per criterion),
``ranking_<budget>.png`` (arms sorted by mean target mIoU beside the controls),
``per_target.png`` (per-target bars) and ``kept_width.png`` (kept share of each
layer per criterion, first seed, half-FLOPs budget).
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
import time

from mmengine.config import DictAction

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from npdg.apis import studies  # noqa: E402  (plain data, no torch)
from npdg.apis.report import FIELDS, TARGETS, bars, finished, markdown, plots, row_of, run_name, summarise  # noqa: E402  (no torch until a run starts)

__all__ = ['FIELDS', 'TARGETS', 'bars', 'finished', 'markdown', 'plots', 'row_of', 'run_name',
           'summarise', 'main']


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--regime', default=studies.DEFAULT_REGIME, choices=list(studies.REGIMES),
                        help=f'default {studies.DEFAULT_REGIME} (npdg/apis/studies.py)')
    parser.add_argument('--arms', nargs='+', default=None, metavar='ARM',
                        help="arms to run (default: the regime's controls and criteria; "
                             '--list prints them)')
    parser.add_argument('--budgets', nargs='+', default=None,
                        help="budget names (default: the regime's two)")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--warm-start', default=None,
                        help="use this warm-start checkpoint instead of training the regime's "
                             '(effl0: configs/bench_effl0/pretrain_source.py, r18h: '
                             'configs/bench/pretrain_source.py); its SHA-256 is recorded')
    parser.add_argument('--work-dir', default=None,
                        help='default work_dirs/compare_<regime> (r18h: work_dirs/compare)')
    parser.add_argument('--out-dir', default=None,
                        help='default benchmarks/results/compare_<regime> '
                             '(r18h: benchmarks/results/compare)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides for every run that reads them (a smoke run: '
                             'max_iters=20 prune_iters=[10] stats_interval=5 stats_batches=1)')
    parser.add_argument('--shard', default=None, metavar='I/N',
                        help='run only runs I, I+N, I+2N, ... of the plan (0-based) and stop '
                             'without tables: N processes with OMP_NUM_THREADS=1 share a '
                             'machine; a last call without --shard makes the tables from the '
                             'cache')
    parser.add_argument('--cached-only', action='store_true',
                        help='train nothing: make the tables from the runs of the plan that '
                             'are finished (a partial comparison), listing the missing ones')
    parser.add_argument('--bars', action='store_true',
                        help="also run the regime's sanity bars (source-only 1.5x longer, "
                             'oracles, L1 at 0.75x without perturbation) and write bars.md')
    parser.add_argument('--list', action='store_true', help='print the plan and stop')
    args = parser.parse_args()
    os.chdir(ROOT)
    regime = studies.REGIMES[args.regime]
    suffix = '' if args.regime == 'r18h' else f'_{args.regime}'
    args.work_dir = args.work_dir or f'work_dirs/compare{suffix}'
    args.out_dir = args.out_dir or osp.join('benchmarks', 'results', f'compare{suffix}')
    args.arms = args.arms or studies.default_arms(args.regime)
    args.budgets = args.budgets or list(regime['budgets'])
    try:
        runs = studies.plan(args.regime, args.arms, args.budgets, args.seeds)
    except KeyError as e:
        parser.error(e.args[0])
    shard = None
    if args.shard is not None:
        index, _, count = args.shard.partition('/')
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            parser.error(f'--shard {args.shard!r}: expected I/N with 0 <= I < N, e.g. 0/2')
        shard = (int(index), int(count))
    if args.list:
        print(f'regime {args.regime}: {regime["title"]}')
        for k, run in enumerate(runs, 1):
            print(f'{k:3d} {run_name(run):32s} {run["config"]} {run["options"]}')
        for name, (config, options) in regime['bars'].items():
            print(f'bar {name:28s} {config} {options}')
        return
    import npdg  # noqa: F401
    from npdg.apis import bench, experiment
    from npdg.compat import flush_denormals
    from npdg.utils.checkpoint_io import file_digest
    from npdg.utils.settings import split_overrides
    # each override goes to the runs whose config reads it (an unread one is an error)
    configs = {run_name(r): r['config'] for r in runs}
    if args.bars:
        configs.update({name: config for name, (config, _) in regime['bars'].items()})
    extra = split_overrides(configs, args.cfg_options, read_keys=experiment.READ_KEYS)
    flush_denormals()  # CPU speed
    t0 = time.time()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    bench.prepare_data()
    ckpt = sha = None
    if regime['warm_start']:
        ckpt, _ = bench.warm_start(args.warm_start, args.work_dir, log, regime['warm_start'])
        sha = file_digest(ckpt)
    start = f'warm start {ckpt} (sha256 {sha[:16]}...)' if ckpt else 'ImageNet init'
    code_version = experiment.code_version()
    log(f'[compare] regime {args.regime}: {len(runs)} runs; {start}; code version '
        f'{code_version}')
    results, missing = [], []
    for k, run in enumerate(runs, 1):
        if shard is not None and (k - 1) % shard[1] != shard[0]:
            continue
        opts = dict(run['options'], **extra[run_name(run)], **{'randomness.seed': run['seed']})
        if ckpt:
            opts['warm_start'] = ckpt
        if args.cached_only and not finished(run, opts, args.work_dir):
            missing.append(run_name(run))
            continue
        done_s = time.time() - t0
        eta = '' if k == 1 else f', about {done_s / (k - 1) * (len(runs) - k + 1) / 60:.0f} min left'
        log(f'[compare] {k}/{len(runs)} {run_name(run)} ({done_s / 60:.0f} min so far{eta})')
        results.append((run, bench.cached(run_name(run), run['config'], opts, args.work_dir,
                                          log=log)))
    if shard is not None:
        log(f'[compare] shard {args.shard} done ({(time.time() - t0) / 60:.0f} min); run '
            'again without --shard for the tables')
        return
    if missing:
        log(f'[compare] {len(missing)} runs of the plan are not finished and left out: '
            + ', '.join(missing))
    if not results:  # --cached-only before any run finished: keep the tables that are there
        log(f'[compare] no finished run of the plan in {args.work_dir}: no tables written')
        return
    rows = [row_of(run, result, code_version) for run, result in results]
    summary = summarise(rows)
    lines = markdown(summary, args.regime)
    print('\n'.join(lines))
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'results.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    command = 'python tools/compare.py ' + ' '.join(sys.argv[1:])
    compare_s = round(time.time() - t0, 1)
    with open(osp.join(args.out_dir, 'results.md'), 'w') as f:
        f.write(f'`{command.strip()}` (regime {args.regime}: {regime["title"]}; seeds '
                f'{args.seeds}; {start}; code version {code_version}; mIoU %, 19 classes, '
                'Mapillary narrow mapping, last iteration; GFLOPs at 3x128x256; '
                f'{compare_s / 60:.0f} min)\n\n' + '\n'.join(lines) + '\n'
                + (f'\nNot finished, left out: {", ".join(missing)}\n' if missing else ''))
    bar = None
    if args.bars:
        bar_lines, bar = bars(args.regime, args.seeds, results,
                              {k: v for name in regime['bars'] for k, v in extra[name].items()},
                              args.work_dir, log, ckpt)
        print('\n'.join(bar_lines))
        with open(osp.join(args.out_dir, 'bars.md'), 'w') as f:
            f.write(f'`{command.strip()}`\n\n' + '\n'.join(bar_lines) + '\n')
    with open(osp.join(args.out_dir, 'results.json'), 'w') as f:
        json.dump(dict(command=command.strip(), regime=args.regime, seeds=args.seeds,
                       budgets=args.budgets, missing=missing, arms=args.arms,
                       warm_start=dict(path=ckpt, sha256=sha) if ckpt else None,
                       code_version=code_version,
                       summary={f'{a}@{b}': v for (a, b), v in summary.items()},
                       runs=rows, bars=bar, compare_seconds=compare_s,
                       wall_seconds=round(time.time() - t0, 1)), f, indent=1)
    plots(summary, results, args.out_dir, args.regime)
    log(f'[compare] saved {args.out_dir}/results.csv, results.md, results.json and plots '
        f'({(time.time() - t0) / 60:.0f} min)')


if __name__ == '__main__':
    main()
