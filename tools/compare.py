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

TARGETS = studies.TARGETS
FIELDS = ['arm', 'budget', 'seed', *[f'{t}_mIoU' for t in TARGETS], 'mean_target_mIoU',
          'source_mIoU', 'pseudo_target_mIoU', 'gflops', 'params', 'latency_ms',
          'train_seconds', 'prune_seconds', 'units_removed', 'units_total', 'config',
          'code_version', 'work_dir']


def finished(run, options, work_dir):
    """Whether the run with these options is in the cache (same config and code)."""
    from npdg.apis import bench, experiment
    key = experiment.run_key(bench.load(run['config'], options))
    path = osp.join(work_dir, f'{run_name(run)}_{key}', 'result.json')
    if not osp.isfile(path):
        return False
    with open(path) as f:
        return json.load(f).get('run_key') == key


def run_name(run):
    """Folder prefix of a run."""
    return f"{run['arm']}{'_' + run['budget'] if run['budget'] else ''}_seed{run['seed']}"


def row_of(run, result, code_version):
    """One results.csv row."""
    pruning = result.get('pruning') or {}
    row = dict(arm=run['arm'], budget=run['budget'] or 'unpruned', seed=run['seed'],
               mean_target_mIoU=result['mean_mIoU'], source_mIoU=result['source_mIoU'],
               pseudo_target_mIoU=result.get('pseudo_target_mIoU', float('nan')),
               gflops=result['gflops'], params=result['params'],
               latency_ms=result['latency_ms'], train_seconds=result['train_seconds'],
               prune_seconds=pruning.get('seconds', 0.0),
               units_removed=pruning.get('removed', 0), units_total=pruning.get('total', 0),
               config=run['config'], code_version=code_version,
               work_dir=result.get('work_dir', ''))
    for t in TARGETS:
        row[f'{t}_mIoU'] = result['targets'][t]['mIoU']
    return row


def summarise(rows):
    """(arm, budget) -> mean +- std over seeds of every figure."""
    from npdg.apis.bench import mean_std
    groups = {}
    for row in rows:
        groups.setdefault((row['arm'], row['budget']), []).append(row)
    keys = [f'{t}_mIoU' for t in TARGETS] + [
        'mean_target_mIoU', 'source_mIoU', 'pseudo_target_mIoU', 'gflops', 'params',
        'latency_ms', 'train_seconds', 'prune_seconds']
    return {group: dict({k: mean_std([float(r[k]) for r in members]) for k in keys},
                        seeds=sorted(r['seed'] for r in members))
            for group, members in groups.items()}


def markdown(summary, regime=studies.DEFAULT_REGIME, reference='perturb_only'):
    """Markdown table, one row per (arm, budget); delta against ``reference``."""
    ARMS, BUDGETS = studies.arms(regime), studies.REGIMES[regime]['budgets']
    head = ['arm', 'budget', 'seeds', *TARGETS, 'mean target', 'vs perturb_only',
            'source (held-out)', 'pseudo-target', 'GFLOPs', 'params (M)', 'latency (ms)',
            'train (s)', 'prune step (s)']
    ref = summary.get((reference, 'unpruned'))
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    order = {b: i for i, b in enumerate(['unpruned', *BUDGETS])}
    for (arm, budget), e in sorted(summary.items(),
                                   key=lambda kv: (order.get(kv[0][1], 9), ARMS.index(kv[0][0])
                                                   if kv[0][0] in ARMS else 99)):
        delta = '' if ref is None else f"{e['mean_target_mIoU'][0] - ref['mean_target_mIoU'][0]:+.2f}"
        cells = [arm, budget, str(len(e['seeds']))] + [
            f'{e[k][0]:.2f} +- {e[k][1]:.2f}' for k in
            (*[f'{t}_mIoU' for t in TARGETS], 'mean_target_mIoU')] + [delta] + [
            f'{e[k][0]:.2f} +- {e[k][1]:.2f}' for k in ('source_mIoU', 'pseudo_target_mIoU')] + [
            f"{e['gflops'][0]:.3f}", f"{e['params'][0] / 1e6:.2f}",
            f"{e['latency_ms'][0]:.1f}", f"{e['train_seconds'][0]:.0f}",
            f"{e['prune_seconds'][0]:.1f}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def _save(fig, ax, path, xlabel, ylabel, title):
    """Label, grid, legend, save and close one figure."""
    import matplotlib.pyplot as plt
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plots(summary, results, out_dir, regime=studies.DEFAULT_REGIME):
    """mIoU vs GFLOPs, per-target bars, kept width per layer."""
    ARMS, BUDGETS = studies.arms(regime), studies.REGIMES[regime]['budgets']
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    markers = dict(unpruned='s', r30='o', flops75='o', flops50='^')
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {arm: plt.cm.tab20(i / max(1, len(ARMS) - 1)) for i, arm in enumerate(ARMS)}
    span = max(e['gflops'][0] for e in summary.values())
    for (arm, budget), e in summary.items():
        # arms at one budget share their GFLOPs: spread them a little to keep them apart
        shift = 0.006 * span * (ARMS.index(arm) - len(ARMS) / 2) if arm in ARMS else 0.0
        ax.errorbar(e['gflops'][0] + shift, e['mean_target_mIoU'][0],
                    yerr=e['mean_target_mIoU'][1],
                    fmt=markers.get(budget, 'o'), color=colors.get(arm), capsize=2,
                    label=f'{arm} ({budget})')
    _save(fig, ax, osp.join(out_dir, 'miou_vs_gflops.png'),
          'GFLOPs (3x128x256; arms spread apart by a few %)',
          'mean target mIoU (%)', f'criteria, {regime} regime (mean +- std over seeds)')

    for budget in [b for b in BUDGETS if any(g[1] == b for g in summary)]:
        arms = sorted([g for g in summary if g[1] in (budget, 'unpruned')],
                      key=lambda g: summary[g]['mean_target_mIoU'][0])
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(arms) + 1.2))
        ax.barh(range(len(arms)), [summary[g]['mean_target_mIoU'][0] for g in arms],
                xerr=[summary[g]['mean_target_mIoU'][1] for g in arms], capsize=2,
                color=[colors.get(g[0]) for g in arms], label='mean +- std over seeds')
        ax.set_yticks(range(len(arms)))
        ax.set_yticklabels([f'{a} ({b})' for a, b in arms], fontsize=7)
        _save(fig, ax, osp.join(out_dir, f'ranking_{budget}.png'), 'mean target mIoU (%)', '',
              f'unseen targets, {budget} vs the unpruned controls')

    groups = sorted(summary, key=lambda g: (g[1] != 'unpruned', g[1], ARMS.index(g[0])
                                            if g[0] in ARMS else 99))
    fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(groups)), 4))
    width = 0.8 / len(TARGETS)
    for i, t in enumerate(TARGETS):
        ax.bar([k + i * width for k in range(len(groups))],
               [summary[g][f'{t}_mIoU'][0] for g in groups], width,
               yerr=[summary[g][f'{t}_mIoU'][1] for g in groups], label=t, capsize=1)
    ax.set_xticks([k + width for k in range(len(groups))])
    ax.set_xticklabels([f'{a}\n{b}' for a, b in groups], rotation=90, fontsize=6)
    ax.set_ylabel('mIoU (%)')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(osp.join(out_dir, 'per_target.png'), dpi=120)
    plt.close(fig)

    widths = {}
    for run, result in results:
        layers = (result.get('pruning') or {}).get('layers')
        if layers and run['seed'] == min(r['seed'] for r, _ in results) and \
                run['budget'] == 'flops50':
            widths[run['arm']] = layers
    if widths:
        names = list(next(iter(widths.values())))
        fig, ax = plt.subplots(figsize=(max(8, 0.12 * len(names)), 4))
        for arm, layers in widths.items():
            ax.plot(range(len(names)), [layers[n][1] / max(1, layers[n][0]) if n in layers
                                        else float('nan') for n in names],
                    marker='.', lw=0.8, color=colors.get(arm), label=arm)
        _save(fig, ax, osp.join(out_dir, 'kept_width.png'), 'unit layer (graph order)',
              'kept share of units', 'kept width per layer at half the FLOPs (first seed)')


def bars(regime, seeds, results, extra_options, work_dir, log, warm=None):
    """The regime's sanity bars from its bar runs and the main runs' source-only.

    (a) held-out source moves < 1 mIoU when source-only trains 1.5x longer;
    (b) source minus mean target of source-only >= 15 mIoU; (c) the per-target
    oracles; (d) (ImageNet regime) plain L1 at 0.75x FLOPs, without the
    perturbation, loses <= 2 points of held-out source against source-only.

    Returns:
        tuple[list[str], dict]: Markdown lines and the figures.
    """
    from npdg.apis import bench
    from npdg.apis.bench import mean_std
    r = studies.REGIMES[regime]
    runs = {}
    for name, (config, options) in r['bars'].items():
        for seed in seeds:
            opts = dict(options, **extra_options, **{'randomness.seed': seed})
            if warm:
                opts['warm_start'] = warm
            runs.setdefault(name, {})[seed] = bench.cached(f'{name}_seed{seed}', config, opts,
                                                           work_dir, log=log)
    source = {run['seed']: res for run, res in results
              if run['arm'] == 'source_only' and run['seed'] in seeds}
    figs = {}
    if len(source) != len(seeds):
        raise RuntimeError('--bars needs the source_only runs of the same seeds: run the '
                           'comparison with --arms source_only (or all arms) first')
    src = [source[k]['source_mIoU'] for k in seeds]
    gap = [source[k]['source_mIoU'] - source[k]['mean_mIoU'] for k in seeds]
    longer = [runs['source_only_x1_5'][k]['source_mIoU'] for k in seeds]
    figs['a_longer_minus_source'] = mean_std([b - a for a, b in zip(src, longer)])
    figs['b_source_minus_mean_target'] = mean_std(gap)
    for t in TARGETS:
        if f'oracle_{t}' in runs:
            figs[f'c_oracle_{t}'] = mean_std([runs[f'oracle_{t}'][k]['targets'][t]['mIoU']
                                              for k in seeds])
            figs[f'c_source_only_{t}'] = mean_std([source[k]['targets'][t]['mIoU']
                                                   for k in seeds])
    if 'l1_source_flops75' in runs:
        figs['d_l1_flops75_minus_source'] = mean_std(
            [runs['l1_source_flops75'][k]['source_mIoU'] - source[k]['source_mIoU']
             for k in seeds])
        figs['d_gflops'] = mean_std([runs['l1_source_flops75'][k]['gflops'] for k in seeds])
    checks = dict(a=('|a_longer_minus_source| < 1', abs(figs['a_longer_minus_source'][0]) < 1),
                  b=('b_source_minus_mean_target >= 15',
                     figs['b_source_minus_mean_target'][0] >= 15))
    if 'd_l1_flops75_minus_source' in figs:
        checks['d'] = ('d_l1_flops75_minus_source >= -2',
                       figs['d_l1_flops75_minus_source'][0] >= -2)
    lines = [f'Bars of the {regime} regime (seeds {seeds}; mean +- std; mIoU %; held-out '
             'source frames unless named):', '', '| figure | value |', '|---|---:|']
    lines += [f'| {k} | {m:.2f} +- {sd:.2f} |' for k, (m, sd) in figs.items()]
    lines += ['', '| bar | rule | holds |', '|---|---|---|']
    lines += [f'| ({k}) | {rule} | {"yes" if ok else "NO"} |' for k, (rule, ok) in checks.items()]
    return lines, dict(figures=figs, checks={k: v[1] for k, v in checks.items()}, runs=runs)


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
