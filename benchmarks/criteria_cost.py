"""What each pruning criterion costs, side by side in one run, on the benchmark model.

    python benchmarks/criteria_cost.py             # -> benchmarks/results/criteria_cost.{json,md}

Model: the benchmark regime's half-width DeepLabV3+ R18 (configs/bench/npdg.py;
weights: the warm start when it exists, else random, which does not change the
cost); data: 4 training batches of 8 synthetic GTA5 crops (96x96) from
data/synthetic_bench (made when absent), the default of UnitPruningHook's
scoring context. For every registered criterion it times one scoring of every
unit (a fresh ScoringContext each time, so the context's passes are included;
median of ``--repeats``), next to one training iteration (forward, backward,
SGD step on one batch) and one statistics collection of NPDG
(SensitivityStatisticsHook: 2 images x 4 styles). The per-iteration cost of a
criterion in the benchmark recipe is its scoring time once per prune step,
spread over the 600 iterations of a run (NPDG and NPDG-by-w also pay a
statistics collection every 50 iterations, NPDG and slimming a proximal
shrink per iteration, not timed here).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time
import types

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
import npdg  # noqa: E402,F401

CONFIG = 'configs/bench/npdg.py'
WARM_START = 'work_dirs/pretrain_source/iter_6000.pth'


def median_time(fn, repeats):
    """Median wall time of ``fn()`` over ``repeats`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out-dir', default=osp.join('benchmarks', 'results'))
    args = parser.parse_args()
    os.chdir(ROOT)
    import torch
    from mmengine.dataset import pseudo_collate
    from mmseg.registry import DATASETS

    from npdg.apis import bench
    from npdg.compat import flush_denormals
    from npdg.hooks import SensitivityStatisticsHook
    from npdg.importance import IMPORTANCES, ScoringBatches, ScoringContext
    from npdg.pruning.pruner import UnitPruner
    from npdg.utils.model import build_segmentor
    flush_denormals()
    bench.prepare_data()
    cfg = bench.load(CONFIG, {})
    model = build_segmentor(cfg, WARM_START if osp.isfile(WARM_START) else None)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batches = ScoringBatches(dataset, pseudo_collate, cfg.train_dataloader.batch_size, 4, 0)()
    stats_hook = SensitivityStatisticsHook(num_images=2, num_styles=4)
    from npdg.perturbation import build_perturbation
    stats_hook.perturbation = build_perturbation(dict(type='AdvStyle'))
    stats_hook.seed = 0
    stats_hook.attach(model)
    runner = types.SimpleNamespace(model=model)
    stats_hook.collect(runner, batches[0], 0)
    stats_hook.refresh(types.SimpleNamespace(iter=0))
    statistics_scores = stats_hook.scores

    def train_iteration():
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        data = model.data_preprocessor(dict(inputs=list(batches[0]['inputs']),
                                            data_samples=list(batches[0]['data_samples'])), True)
        losses = model.loss(data['inputs'], data['data_samples'])
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        model.eval()

    rows = dict(train_iteration=median_time(train_iteration, args.repeats),
                statistics_collection=median_time(
                    lambda: stats_hook.collect(runner, batches[0], 0), args.repeats))
    stats_hook.detach()
    units = UnitPruner(threshold=None, trace_shape=tuple(cfg.trace_shape)).units(model)[1]
    for name in IMPORTANCES:
        pruner = UnitPruner(dict(type=name), threshold=None, trace_shape=tuple(cfg.trace_shape))
        rows[name] = median_time(
            lambda: pruner.score(units, ScoringContext(model, batches=batches,
                                                       statistics=statistics_scores)),
            args.repeats)
        print(f'{name:32s} {rows[name]:8.3f} s', flush=True)
    it = rows['train_iteration']
    lines = ['| what | seconds | training iterations | per iteration over a 600-iteration run |',
             '|---|---|---|---|']
    for name, seconds in rows.items():
        per_it = seconds / 600 if name in IMPORTANCES else (
            seconds / 50 if name == 'statistics_collection' else seconds)
        lines.append(f'| {name} | {seconds:.3f} | {seconds / it:.1f} | '
                     f'{per_it * 1000:.1f} ms ({100 * per_it / it:.1f} % of an iteration) |')
    print('\n'.join(lines))
    os.makedirs(args.out_dir, exist_ok=True)
    out = osp.join(args.out_dir, 'criteria_cost')
    with open(out + '.json', 'w') as f:
        json.dump(dict(seconds=rows, units=len(units), unit_count=sum(u.num_units for u in units),
                       batches=len(batches), batch_size=cfg.train_dataloader.batch_size,
                       threads=torch.get_num_threads(), config=CONFIG,
                       note='median of --repeats; scoring includes the context passes; '
                            'per iteration: criteria once per 600 iterations, statistics '
                            'collection every 50'), f, indent=1)
    with open(out + '.md', 'w') as f:
        f.write(f'`python benchmarks/criteria_cost.py` ({torch.get_num_threads()} threads; '
                f'{len(batches)} batches of {cfg.train_dataloader.batch_size}; '
                f'{sum(u.num_units for u in units)} units)\n\n' + '\n'.join(lines) + '\n')
    print(f'saved {out}.json / .md')


if __name__ == '__main__':
    main()
