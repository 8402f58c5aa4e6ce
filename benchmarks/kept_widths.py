"""Kept width of every pruned arm of a comparison, per block and per stage.

    python benchmarks/kept_widths.py --from-runs work_dirs/compare_effl0 --budget flops50

Reads each finished run's ``result.json`` (tools/compare.py writes them; the last prune
step's per-layer widths are under ``pruning.layers``), averages the kept share of each
unit layer over seeds, and writes ``benchmarks/results/kept_widths_<budget>.{md,json}``:
one row per arm, one column per stage (kept units / units before, summed over the
stage's layers) and the removed share of all units.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import statistics
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from npdg.analysis.stages import stage_of  # noqa: E402

RUN = re.compile(r'^(?P<arm>.+)_(?P<budget>flops\d+|r\d+)_seed(?P<seed>\d+)_[0-9a-f]{16}$')


def collect(runs_dir, budget):
    """arm -> seed -> {layer: [units before, units after]} of the finished runs."""
    out = {}
    for path in sorted(glob.glob(osp.join(runs_dir, '*', 'result.json'))):
        m = RUN.match(osp.basename(osp.dirname(path)))
        if not m or m['budget'] != budget:
            continue
        with open(path) as f:
            layers = (json.load(f).get('pruning') or {}).get('layers')
        if layers:
            out.setdefault(m['arm'], {})[int(m['seed'])] = layers
    return out


def kept_by_stage(layers):
    """stage -> kept share (units after / before, summed over the stage), and overall."""
    sums = {}
    for name, (before, after) in layers.items():
        s = sums.setdefault(stage_of(name), [0, 0])
        s[0] += before
        s[1] += after
    shares = {k: a / b for k, (b, a) in sums.items() if b}
    total = sum(b for b, _ in sums.values())
    shares['all'] = sum(a for _, a in sums.values()) / total if total else float('nan')
    return shares


def summarise(runs):
    """arm -> stage -> (mean, std over seeds) of the kept share."""
    table = {}
    for arm, seeds in runs.items():
        per_seed = [kept_by_stage(layers) for layers in seeds.values()]
        stages = sorted({k for p in per_seed for k in p}, key=lambda k: (k == 'all', k))
        table[arm] = {k: (statistics.mean(p[k] for p in per_seed),
                          statistics.stdev([p[k] for p in per_seed]) if len(per_seed) > 1
                          else 0.0) for k in stages}
        table[arm]['seeds'] = sorted(seeds)
    return table


def markdown(table, budget):
    """The kept-share table (one row per arm)."""
    stages = sorted({k for row in table.values() for k in row if k != 'seeds'},
                    key=lambda k: (k == 'all', k))
    lines = [f'Kept share of the prunable units per stage at {budget} (mean +- std over '
             'seeds; units after / before the prune, summed over the stage):', '',
             '| arm | seeds | ' + ' | '.join(stages) + ' |', '|---|---|' + '---:|' * len(stages)]
    for arm, row in sorted(table.items()):
        cells = [f'{row[k][0]:.2f} +- {row[k][1]:.2f}' if k in row else '' for k in stages]
        lines.append(f'| {arm} | {len(row["seeds"])} | ' + ' | '.join(cells) + ' |')
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--from-runs', required=True, help='a tools/compare.py work dir')
    parser.add_argument('--budget', default='flops50')
    parser.add_argument('--out-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    args = parser.parse_args(argv)
    runs = collect(args.from_runs, args.budget)
    if not runs:
        parser.error(f'--from-runs {args.from_runs}: no finished pruned run at budget '
                     f'{args.budget} (folders <arm>_{args.budget}_seed<k>_<key>/result.json)')
    table = summarise(runs)
    lines = markdown(table, args.budget)
    print('\n'.join(lines))
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, f'kept_widths_{args.budget}')
    with open(stem + '.md', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(stem + '.json', 'w') as f:
        json.dump(dict(budget=args.budget, from_runs=args.from_runs, arms=table), f, indent=1)
    print(f'saved {stem}.md, {stem}.json')
    return table


if __name__ == '__main__':
    main()
