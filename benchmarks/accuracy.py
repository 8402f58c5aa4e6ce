"""Accuracy in the benchmark regime: NPDG beside its equal-compute controls.

    python benchmarks/accuracy.py                      # main table: 5 arms x 3 seeds
    python benchmarks/accuracy.py --study ablations    # lambda, r, no perturbation, r-matched
    python benchmarks/accuracy.py --study perturbation # perturbation strength (label-free choice)
    python benchmarks/accuracy.py --study sparsity     # the label-free choice of s
    python benchmarks/accuracy.py --study oracle       # per-target oracles (upper bound)
    python benchmarks/accuracy.py --study convergence  # source-only trained 1.5x longer
    python benchmarks/accuracy.py --shift              # + every run on targets at shift 1, 2, 3

The regime (configs/bench/, docs/results.md "benchmark regime"):

* Data: data/synthetic_bench, the synthetic domains made with
  ``appearance_shift=3`` (the targets' global appearance - colour cast, white
  balance, exposure, saturation, contrast, gamma - three times as far from
  a neutral camera as in data/synthetic; scenes and labels unchanged) and 800
  synthetic GTA5 frames (680 train, 120 held out). Made here if absent.
* Warm start (the CPU stand-in for ImageNet weights, NOT ImageNet):
  configs/bench/pretrain_source.py, DeepLabV3+ on a half-width ResNet-18 trained
  6000 iterations from scratch on the source. Made once per config and code
  version, or given with ``--warm-start`` (its SHA-256 is recorded).
* Arms: 600 iterations from the warm start, SGD lr 0.01 poly. ``source_only``;
  ``perturb_only`` (AdvStyle on half of every batch, unpruned); ``npdg``,
  ``slimming`` and ``l1`` (per-layer-normalised L1 filter norm) all pruned at
  iteration 200 to the same target, half the inference FLOPs (``*_flops50``
  configs), with the same perturbation; ``l2`` on request.

Every run is tested on synthetic Cityscapes, BDD100K and Mapillary (narrow
mapping) at the last iteration (nothing is chosen on the targets), on the
held-out source frames, and on the label-free pseudo-target (the held-out
source frames re-styled by ``PseudoTargetStyle``). Prints mean +- std over
seeds; saves benchmarks/results/bench_<study>.json, a markdown table
(bench_<study>.md) and a plot, bench_<study>.png (mean target mIoU against
GFLOPs, one point per run).

Runs are cached in ``<work-dir>/<run>_seed<k>_<key>/`` where the key hashes the
resolved config (warm-start path included) and npdg's source code: a changed
config or code reruns, never reuses.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmengine.config import DictAction  # noqa: E402

import npdg  # noqa: E402,F401
from npdg.apis import bench, experiment, report  # noqa: E402
from npdg.apis.bench import DATA, PRETRAIN, cached, load, mean_std  # noqa: E402,F401
from npdg.apis.studies import STUDIES, TARGETS  # noqa: E402
from npdg.apis.synthetic_data import prepare_synthetic_domains  # noqa: E402
from npdg.utils.checkpoint_io import file_digest as sha256  # noqa: E402
from npdg.utils.settings import split_overrides  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCH = 'configs/bench/'
# The studies (runs, default runs, seeds) are data in npdg/apis/studies.py (STUDIES).


def warm_start(args):
    """Path of the warm start: given, or trained once per config and code version."""
    return bench.warm_start(args.warm_start, args.work_dir)


SHIFTS = {1.0: 'data/synthetic_bench_shift1', 2.0: 'data/synthetic_bench_shift2',
          3.0: DATA['root']}


def shift_study(runs):
    """Test the main study's checkpoints on the targets at appearance shift 1, 2 and 3.

    Same scenes and labels at every shift (only the targets' global appearance
    moves), so the change with the shift is what a style perturbation can reach.

    Returns:
        dict: ``{run: {shift: (mean, std) of mean target mIoU}}`` and the perturbation's
        effect (perturb_only - source_only) per shift.
    """
    for shift, root in SHIFTS.items():
        if root != DATA['root']:
            prepare_synthetic_domains(root, seed=0, appearance_shift=shift, domains=TARGETS)
    table = {}
    for name, by_seed in runs.items():
        config, options = STUDIES['main']['runs'][name]
        table[name] = {}
        for shift, root in SHIFTS.items():
            values = []
            for seed, result in by_seed.items():
                if root == DATA['root']:
                    values.append(result['mean_mIoU'])
                    continue
                cache = osp.join(osp.dirname(osp.dirname(result['checkpoint'])),
                                 f'shift{shift:g}.json')
                if not osp.isfile(cache):
                    opts = dict(options, warm_start=result['warm_start'],
                                **{'randomness.seed': seed})
                    cfg = experiment.retarget_data_root(load(config, opts, DATA['root']), root,
                                                        default=DATA['root'])
                    metrics = experiment.test(cfg, result['checkpoint'],
                                              osp.join(osp.dirname(cache), f'test_shift{shift:g}'))
                    with open(cache, 'w') as f:
                        json.dump({k: float(v) for k, v in metrics.items()
                                   if isinstance(v, (int, float))}, f, indent=1)
                with open(cache) as f:
                    values.append(json.load(f)['mIoU'])
            table[name][shift] = mean_std(values)
    lines = ['| run | ' + ' | '.join(f'shift {s:g}' for s in SHIFTS) + ' |',
             '|---|' + '---|' * len(SHIFTS)]
    for name, row in table.items():
        lines.append(f'| {name} | ' + ' | '.join(f'{m:.2f} +- {sd:.2f}'
                                                 for m, sd in row.values()) + ' |')
    if 'source_only' in table and 'perturb_only' in table:
        lines.append('| perturbation effect | ' + ' | '.join(
            f"{table['perturb_only'][s][0] - table['source_only'][s][0]:+.2f}"
            for s in SHIFTS) + ' |')
    return table, lines


def sparse_lr_sum(cfg):
    """sum(lr_t) over the iterations before the last prune step (the recipe's PolyLR)."""
    sched = next(p for p in cfg.param_scheduler if p['type'] == 'PolyLR')
    # mmengine's PolyLR decays over end - begin - 1 steps.
    lr, eta, power, total = cfg.lr, sched['eta_min'], sched['power'], cfg.max_iters - 1
    return sum((lr - eta) * (1 - t / total) ** power + eta for t in range(cfg.prune_iters[-1]))


def sparsity_rule(checkpoint, data_root, config=BENCH + 'npdg.py'):
    """The label-free choice of s: total shrink at omega = 1 = the r-quantile of |gamma|.

    Over the sparse phase (iterations before the prune step) the proximal step
    moves a scale by ``lr_t * s * omega``; at omega = 1 (an average unit) the
    total is ``s * sum(lr_t)``. s is set so that this equals the r-quantile of
    the units' |gamma| in the warm start: an average-sensitivity unit in the
    lowest r of scales can reach 0, a more sensitive one sooner.

    Returns:
        dict: The figures (quantile, sum of lr, s).
    """
    import torch

    from npdg.importance import BNScaleImportance
    from npdg.pruning.units import collect_units
    from npdg.utils.model import build_segmentor
    cfg = load(config, dict(warm_start=checkpoint), data_root)
    model = build_segmentor(cfg, checkpoint)
    _, units = collect_units(model, tuple(cfg.trace_shape))
    scales = torch.cat([BNScaleImportance()(u).float() for u in units])
    ratio, sum_lr = cfg.prune_ratio, sparse_lr_sum(cfg)
    quantile = float(torch.quantile(scales, ratio))
    return dict(units=int(scales.numel()), ratio=ratio, quantile=quantile,
                median=float(scales.median()), sum_lr=sum_lr, s=quantile / sum_lr)


def rows_of(runs, study):
    """results.csv-style rows (:func:`npdg.apis.report.row_of`), the budget read from each config."""
    rows = []
    for name, by_seed in runs.items():
        config, options = STUDIES[study]['runs'][name]
        for seed, result in by_seed.items():
            opts = dict(options, warm_start=result.get('warm_start'))
            budget = report.budget_of(load(config, opts, DATA['root']))
            run = dict(arm=name, budget=None if budget == 'unpruned' else budget, seed=seed,
                       config=config)
            rows.append(report.row_of(run, result, experiment.code_version()))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--study', default='main', choices=list(STUDIES))
    parser.add_argument('--runs', nargs='+', default=None,
                        help='run names of the study (default: all; main: the 5 arms)')
    parser.add_argument('--seeds', type=int, nargs='+', default=None,
                        help='default 0 1 2 for the main study, 0 for the others')
    parser.add_argument('--warm-start', default=None,
                        help='use this warm-start checkpoint instead of training '
                             f'{PRETRAIN} (its SHA-256 is recorded)')
    parser.add_argument('--work-dir', default='work_dirs/bench')
    parser.add_argument('--out-dir', default=osp.join('benchmarks', 'results'))
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides for every run that reads them (e.g. a smoke run: '
                             'max_iters=20 prune_iters=[10])')
    parser.add_argument('--shift', action='store_true',
                        help='also test every run on the targets at appearance shift 1, 2, 3')
    parser.add_argument('--choose-sparsity', action='store_true',
                        help='print the label-free choice of s for configs/bench/npdg.py '
                             'from the warm start, and stop')
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    from npdg.compat import flush_denormals
    flush_denormals()  # CPU speed
    if args.choose_sparsity:
        ckpt, _ = warm_start(args)
        print(json.dumps(sparsity_rule(ckpt, DATA['root']), indent=1))
        return
    study = STUDIES[args.study]['runs']
    names = args.runs or STUDIES[args.study].get('default', list(study))
    unknown = sorted(set(names) - set(study))
    if unknown:
        parser.error(f'unknown runs {unknown} for --study {args.study}; choose from {list(study)}')
    seeds = args.seeds or STUDIES[args.study].get('seeds', [0])
    t0 = time.time()
    bench.prepare_data()
    ckpt, pretrain = warm_start(args)
    ckpt_sha = sha256(ckpt)
    print(f'[bench] warm start {ckpt} (sha256 {ckpt_sha[:16]}...)', flush=True)
    extra = split_overrides({n: study[n][0] for n in names}, args.cfg_options,
                            read_keys=experiment.READ_KEYS)
    runs = {n: {} for n in names}
    for seed in seeds:
        for name in names:
            config, options = study[name]
            opts = dict(options, **extra[name], warm_start=ckpt, **{'randomness.seed': seed})
            runs[name][seed] = cached(f'{name}_seed{seed}', config, opts, args.work_dir,
                                      DATA['root'])
    summary = report.summarise(rows_of(runs, args.study))
    lines = report.markdown(summary, regime='r18h')
    shift = None
    if args.shift and args.study == 'main':
        shift_table, shift_lines = shift_study(runs)
        shift = {n: {f'{s:g}': v for s, v in row.items()} for n, row in shift_table.items()}
        lines += ['', 'Mean target mIoU against the appearance shift of the targets:', '',
                  *shift_lines]
    print('\n'.join(lines))
    out = osp.join(args.out_dir, f'bench_{args.study}')
    os.makedirs(args.out_dir, exist_ok=True)
    with open(out + '.json', 'w') as f:
        json.dump(dict(study=args.study, runs=runs,
                       summary={f'{arm} ({budget})': e for (arm, budget), e in summary.items()},
                       table=lines, shift=shift,
                       configs={n: list(study[n]) for n in names}, seeds=seeds,
                       warm_start=dict(path=ckpt, sha256=ckpt_sha, result=pretrain),
                       data=DATA, code_version=experiment.code_version(),
                       wall_seconds=round(time.time() - t0, 1),
                       note='mIoU %, 19 classes, Mapillary narrow mapping; FLOPs at '
                            '3x128x256; last iteration, nothing selected on the targets'),
                  f, indent=1)
    with open(out + '.md', 'w') as f:
        f.write(f'`python benchmarks/accuracy.py --study {args.study}` (seeds {seeds}; '
                f'warm start sha256 {ckpt_sha[:16]})\n\n' + '\n'.join(lines) + '\n')
    report.plot_miou_vs_gflops(summary, out + '.png',
                               f'from-scratch regime, {args.study} (mean +- std over seeds)')
    print(f'saved {out}.json / .md ({time.time() - t0:.0f} s)')


if __name__ == '__main__':
    main()
