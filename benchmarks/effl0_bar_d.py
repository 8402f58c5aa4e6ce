"""Bar (d) of the ImageNet regime: how plain L1 pruning at 0.75x FLOPs was made to hold.

    python benchmarks/effl0_bar_d.py --warm-start work_dirs/pretrain_source_effl0/iter_3000.pth
    python benchmarks/effl0_bar_d.py --from-runs work_dirs/effl0_bar_d   # table only

Every variant is configs/controls/bench_effl0/l1_source.py (plain L1, per-layer
mean normaliser, no perturbation, 0.75x inference FLOPs, seed 0) from the
regime's source warm start, changed only where its row says; the reference is
unpruned source-only with the same number of iterations. Everything is judged
on held-out *source* frames (the bar says so; no target label is read to
choose). The variants answer three questions:

* which units: every coupled channel group (stem, residual streams, decode
  head, expansions) or the MBConv expansion channels only (stem, streams and
  decode head kept whole through ``ignored_units``);
* how long a fine-tune after the prune: 150 or 450 iterations, one prune step
  or three;
* plain or distilled: the recipe's fine-tune distils the unpruned warm start
  (``DistillationHook``, weight 1, T 1); ``kd_weight=0`` is the plain fine-tune
  every earlier variant used.

Saved to ``benchmarks/results/effl0_bar_d.{json,md}``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

L1 = 'configs/controls/bench_effl0/l1_source.py'
SOURCE = 'configs/bench_effl0/source_only.py'
L1_LITE2, SOURCE_LITE2 = 'configs/bench_effl2/l1_source.py', 'configs/bench_effl2/source_only.py'
# each backbone's warm start (the same recipe: 3000 source iterations from ImageNet)
WARM = {'lite0': 'configs/bench_effl0/pretrain_source.py',
        'lite2': 'configs/bench_effl2/pretrain_source.py'}
ALL_UNITS = {'ignored_units': []}   # the recipe keeps stem/streams/head whole; this drops that
PLAIN = {'kd_weight': 0.0}          # the recipe distils the warm start in the fine-tune; this does not
# name -> (config, options, what changes, reference run)
VARIANTS = {
    'all_units_ft150': (L1, dict(ALL_UNITS, **PLAIN, max_iters=300), 'all units, prune at 150 of 300',
                        'source_only_300'),
    'expansion_ft150': (L1, dict(**PLAIN, max_iters=300), 'expansion channels only, prune at 150 of 300',
                        'source_only_300'),
    'expansion_head_ft150': (L1, dict(**PLAIN, max_iters=300, ignored_units=[
        r'^backbone\._blocks\.0\._depthwise_conv$', r'_project_conv$']),
        'expansion + decode head, prune at 150 of 300', 'source_only_300'),
    'expansion_3steps_ft150': (L1, dict(**PLAIN, max_iters=300, prune_iters=[50, 100, 150]),
                               'expansion only, 3 steps 50/100/150 of 300', 'source_only_300'),
    'expansion_ft450': (L1, PLAIN, 'expansion only, prune at 150 of 600, plain fine-tune',
                        'source_only_600'),
    'expansion_ft750': (L1, dict(**PLAIN, max_iters=900), 'expansion only, prune at 150 of 900',
                        'source_only_900'),
    # the recipe: the fine-tune distils the unpruned warm start (weight 1, T 1)
    'expansion_kd_ft450': (L1, {}, 'expansion only, prune at 150 of 600, distilled fine-tune '
                           '(the recipe)', 'source_only_600'),
    'source_only_300': (SOURCE, dict(max_iters=300), 'unpruned, 300 iterations', None),
    'source_only_600': (SOURCE, {}, 'unpruned, 600 iterations (the recipe)', None),
    # bar (a) at each schedule: the same arm 1.5x longer
    'source_only_900': (SOURCE, dict(max_iters=900), 'unpruned, 900 iterations',
                        'source_only_600'),
    'source_only_1350': (SOURCE, dict(max_iters=1350), 'unpruned, 1350 iterations',
                         'source_only_900'),
    # the larger backbone (EfficientNet-Lite2), the recipe's schedule
    'lite2_expansion_ft450': (L1_LITE2, PLAIN, 'Lite2: expansion only, prune at 150 of 600',
                              'lite2_source_only_600'),
    'lite2_expansion_ft750': (L1_LITE2, dict(**PLAIN, max_iters=900),
                              'Lite2: expansion only, prune at 150 of 900', 'lite2_source_only_900'),
    'lite2_source_only_600': (SOURCE_LITE2, {}, 'Lite2: unpruned, 600 iterations', None),
    'lite2_source_only_900': (SOURCE_LITE2, dict(max_iters=900), 'Lite2: unpruned, 900 iterations',
                              'lite2_source_only_600'),
    'lite2_source_only_1350': (SOURCE_LITE2, dict(max_iters=1350),
                               'Lite2: unpruned, 1350 iterations', 'lite2_source_only_900'),
}


def backbone(config):
    """The backbone a variant's config uses (its warm start follows it)."""
    return 'lite2' if 'bench_effl2' in config else 'lite0'


def _mean_std(values):
    from npdg.apis.bench import mean_std
    return mean_std(values)


def table(results):
    """Markdown rows: held-out source (mean +- std over seeds) and the paired loss vs the reference.

    Args:
        results (dict): ``{variant: {seed: result}}``.
    """
    lines = ['| variant | what | seeds | held-out source mIoU | vs unpruned (paired) | '
             'mean target mIoU | GFLOPs |', '|---|---|---|---|---|---|---|']
    missing = []
    for name, (_, _, what, ref) in VARIANTS.items():
        runs = results.get(name) or {}
        if not runs:
            missing.append(name)
            continue
        src = _mean_std([r['source_mIoU'] for r in runs.values()])
        tgt = _mean_std([r['mean_mIoU'] for r in runs.values()])
        delta = ''
        paired = [runs[k]['source_mIoU'] - results[ref][k]['source_mIoU']
                  for k in sorted(runs) if ref and k in results.get(ref, {})]
        if paired:
            m, sd = _mean_std(paired)
            delta = f'{m:+.2f} +- {sd:.2f} ({len(paired)})'
        gflops = next(iter(runs.values()))['gflops']
        lines.append(f'| {name} | {what} | {",".join(map(str, sorted(runs)))} | '
                     f'{src[0]:.2f} +- {src[1]:.2f} | {delta} | {tgt[0]:.2f} +- {tgt[1]:.2f} | '
                     f'{gflops:.3f} |')
    if missing:
        lines += ['', 'Not in these runs: ' + ', '.join(missing) + '.']
    return '\n'.join(lines)


# the comparison's run names (tools/compare.py --bars) of the same recipes
ALIASES = {'source_only': 'source_only_600', 'l1_source_flops75': 'expansion_kd_ft450',
           'source_only_x1_5': 'source_only_900'}


def from_runs(folders):
    """The finished runs of work dirs: ``{variant: {seed: result}}``.

    A folder holds this script's runs (``<variant>_<key>``) or a comparison's
    (``<arm>_seed<k>_<key>``, renamed by :data:`ALIASES`); the seed is read from
    each run's options. The first folder that has a (variant, seed) wins.
    """
    import re
    out = {}
    for folder in folders:
        for path in sorted(glob.glob(osp.join(folder, '*', 'result.json'))):
            name = osp.basename(osp.dirname(path)).rsplit('_', 1)[0]
            name = ALIASES.get(re.sub(r'_seed\d+$', '', name), name)
            if name not in VARIANTS:
                continue
            with open(path) as f:
                result = json.load(f)
            seed = int((result.get('options') or {}).get('randomness.seed', 0))
            out.setdefault(name, {}).setdefault(seed, result)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--warm-start', help='the regime warm start (else trained once)')
    p.add_argument('--warm-start-lite2', help='the Lite2 warm start (else trained once)')
    p.add_argument('--work-dir', default='work_dirs/effl0_bar_d')
    p.add_argument('--from-runs', nargs='+',
                   help='make the table from the finished runs of these folders')
    p.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument('--seed', type=int, default=0,
                   help='seed of every variant (use one --work-dir per seed)')
    p.add_argument('--note', default='', help='a provenance line put under the table')
    p.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results', 'effl0_bar_d'))
    args = p.parse_args(argv)
    if args.from_runs:
        results = from_runs(args.from_runs)
    else:
        from npdg.apis import bench
        given = dict(lite0=args.warm_start, lite2=args.warm_start_lite2)
        warm = {}
        results = {}
        for name in args.variants:
            config, options, _, _ = VARIANTS[name]
            b = backbone(config)
            if b not in warm:
                warm[b], _ = bench.warm_start(given[b], args.work_dir, config=WARM[b])
            opts = dict(options, warm_start=warm[b])
            opts['randomness.seed'] = args.seed
            results[name] = {args.seed: bench.cached(name, config, opts, args.work_dir)}
    text = ('# Bars (a) and (d), ImageNet regime: plain L1 at 0.75x FLOPs against unpruned '
            'source-only, and source-only 1.5x longer (held-out source)\n\n' + table(results) + '\n'
            + (f'\n{args.note}\n' if args.note else ''))
    print(text)
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out + '.md', 'w') as f:
        f.write(text)
    with open(args.out + '.json', 'w') as f:
        json.dump({k: {seed: {key: v.get(key) for key in ('source_mIoU', 'mean_mIoU', 'gflops',
                                                            'run_key', 'options', 'work_dir')}
                       for seed, v in by_seed.items()}
                   for k, by_seed in results.items()}, f, indent=1)


if __name__ == '__main__':
    main()
