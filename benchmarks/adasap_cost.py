"""Cost of AdaSAP's sharpness-aware step per training iteration, measured side by side.

    python benchmarks/adasap_cost.py [--iters 30] [--rounds 2]

Model and data: the CPU demo (DeepLabV3+ R18 OS16, batch 8, 96x96 crops of
synthetic GTA5; made under ``--data-root`` if missing). Four variants, each
trained ``--iters`` iterations, interleaved over ``--rounds`` rounds in one
process:

* ``sgd``: plain training steps;
* ``adasap``: the same with :class:`npdg.hooks.AdaSAPHook` (L1 radii,
  re-scored every 10 iterations);
* ``sgd+AdvStyle`` and ``adasap+AdvStyle``: both with the style perturbation
  of the benchmark regime (half of every batch re-styled by one ascent step).

Reports the median iteration time of each and the ratios adasap / sgd with
and without the perturbation (the paper's "about 2x": one extra forward and
backward per step). Saves ``--out`` (benchmarks/results/adasap_cost.json).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
import npdg  # noqa: E402,F401
from benchmarks.overhead import IterClockHook  # noqa: E402  (the per-iteration clock)
from npdg.apis import demo, experiment  # noqa: E402
from npdg.apis.synthetic_data import prepare_synthetic_domains  # noqa: E402
from npdg.engine.runner import NpdgRunner

ADASAP = dict(type='AdaSAPHook', importance=dict(type='L1Importance', normalizer='mean'),
              score_interval=10, trace_shape=(3, 64, 64))
STYLE = dict(type='StylePerturbationHook', perturbation=dict(type='AdvStyle'),
             stylized_ratio=0.5, ascent_steps=1)
VARIANTS = {'sgd': [], 'adasap': [ADASAP], 'sgd+AdvStyle': [STYLE],
            'adasap+AdvStyle': [STYLE, ADASAP]}


def iteration_times(hooks, data_root, iters, batch_size=8, crop=96, workers=None):
    """Train the demo's source-only config with ``hooks``; per-iteration wall times.

    ``workers`` replaces the config's dataloader workers (0: load in the main
    process; a smoke run then skips the workers' start-up and prefetching).
    """
    cfg = experiment.load_config(osp.join(ROOT, demo.MODELS["r18"]['baseline']),
                                 dict(max_iters=iters, batch_size=batch_size,
                                      crop_size=(crop, crop)))
    cfg = experiment.without_validation(experiment.retarget_data_root(cfg, data_root))
    if workers is not None:
        cfg.train_dataloader.update(num_workers=workers, persistent_workers=workers > 0)
    cfg.default_hooks.checkpoint.update(interval=10 ** 6, save_last=False)
    cfg.custom_hooks = [dict(h) for h in hooks] + [dict(type='IterClockHook')]
    with tempfile.TemporaryDirectory() as work:
        cfg.work_dir = work
        cfg.experiment_name = f'adasap_cost_{time.time_ns()}'
        cfg.visualizer.name = cfg.experiment_name
        runner = NpdgRunner.from_cfg(cfg)
        runner.train()
    return next(h for h in runner.hooks if isinstance(h, IterClockHook)).times


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--skip', type=int, default=5, help='warm-up iterations dropped')
    parser.add_argument('--batch-size', type=int, default=8, help="the demo's 8 (smaller: a smoke run)")
    parser.add_argument('--crop', type=int, default=96, help="crop side, the demo's 96")
    parser.add_argument('--workers', type=int, default=None,
                        help="dataloader workers (default: the demo config's; 0 for a smoke run)")
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'synthetic'))
    parser.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results',
                                                  'adasap_cost.json'))
    args = parser.parse_args(argv)
    if args.skip >= args.iters:
        parser.error('--skip must be smaller than --iters')
    if not osp.isfile(osp.join(args.data_root, 'manifest.json')):
        prepare_synthetic_domains(args.data_root, seed=0, nproc=2)  # the demo's data
    times = {k: [] for k in VARIANTS}
    for _ in range(args.rounds):
        for name, hooks in VARIANTS.items():
            times[name] += iteration_times(hooks, args.data_root, args.iters, args.batch_size,
                                           args.crop, args.workers)[args.skip:]
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {'adasap / sgd': med['adasap'] / med['sgd'],
              'adasap+AdvStyle / sgd+AdvStyle': med['adasap+AdvStyle'] / med['sgd+AdvStyle']}
    import torch
    result = dict(model=f'DeepLabV3+ R18 OS16, batch {args.batch_size}, '
                        f'{args.crop}x{args.crop} crops, CPU',
                  threads=torch.get_num_threads(), iters=args.iters, rounds=args.rounds,
                  skip=args.skip, median_s=med, ratios=ratios,
                  note='median iteration time (data loading included) of each variant, '
                       'interleaved in one process; AdaSAP radii by L1, re-scored every 10 '
                       'iterations')
    for k, v in med.items():
        print(f'{k:18s} {v * 1000:8.1f} ms/iteration')
    for k, v in ratios.items():
        print(f'{k:32s} x{v:.2f}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    print(f'saved {args.out}')
    return result


if __name__ == '__main__':
    main()
