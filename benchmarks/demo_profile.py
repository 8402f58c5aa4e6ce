"""Where a demo training iteration goes on the CPU: data, model step, each hook, the rest.

    python benchmarks/demo_profile.py [--configs baseline npdg] [--iters 100]
        [--prune-at 60] [--cprofile 25] [--out benchmarks/results/demo_profile.json]

Trains each demo config (``configs/demo/``; the demo's data made if ``--data-root``
has none) for ``--iters``
iterations, NPDG pruning at ``--prune-at`` (its statistics, sparse training and
prune step all happen), without validation, and times, in the same run:

- ``data``: ``next()`` on the train loop's dataloader iterator (loading,
  augmentation, collation; the worker processes run meanwhile),
- ``model.train_step``: data preprocessor, forward, backward, optimizer step,
- every hook's stage methods (``before_train_iter`` ... ``after_train``), by hook,
- ``other``: the loop's remainder (wall time minus the above).

With ``--cprofile N`` the N functions with the largest cumulative time of the
whole run are listed too. Prints a table and saves JSON.
"""
import argparse
import cProfile
import io
import json
import os
import os.path as osp
import pstats
import sys
import tempfile
import time
from collections import defaultdict

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import npdg  # noqa: E402,F401
from npdg.apis import demo, experiment  # noqa: E402
from npdg.apis.synthetic_data import prepare_synthetic_domains  # noqa: E402
from npdg.engine.runner import NpdgRunner

STAGES = ('before_run', 'before_train', 'before_train_epoch', 'before_train_iter',
          'after_train_iter', 'after_train_epoch', 'after_train', 'after_run',
          'before_save_checkpoint')


class Timer:
    """Accumulated seconds and calls per name."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)

    def wrap(self, name, fn):
        """``fn`` whose calls are timed under ``name``."""
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1
        return timed


class TimedIterator:
    """An iterator whose ``next()`` is timed (other attributes delegated)."""

    def __init__(self, inner, timer):
        self._inner, self._timer = inner, timer

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        try:
            return next(self._inner)
        finally:
            self._timer.seconds['data'] += time.perf_counter() - start
            self._timer.calls['data'] += 1

    def __getattr__(self, name):
        return getattr(self._inner, name)


def instrument(runner, timer):
    """Time the dataloader, the model step and every hook stage of ``runner``."""
    loop = runner.train_loop  # built now, so that its iterator can be wrapped
    loop.dataloader_iterator = TimedIterator(loop.dataloader_iterator, timer)
    model = runner.model
    model.train_step = timer.wrap('model.train_step', model.train_step)
    for hook in runner.hooks:
        for stage in STAGES:
            setattr(hook, stage, timer.wrap(f'{type(hook).__name__}.{stage}',
                                            getattr(hook, stage)))


def profile_config(name, data_root, iters, prune_at, top, model='r18'):
    """Train one demo config with timers; return its row."""
    opts = dict(max_iters=iters)
    if name == 'npdg':
        opts.update(prune_iters=[prune_at])
    cfg = experiment.load_config(osp.join(ROOT, demo.MODELS[model][name]), opts)
    cfg = experiment.without_validation(experiment.retarget_data_root(cfg, data_root))
    cfg.default_hooks.checkpoint.update(interval=iters)
    timer = Timer()
    with tempfile.TemporaryDirectory() as work:
        cfg.work_dir = work
        # mmengine keeps one visualizer/logger per name: a fresh one per run
        cfg.experiment_name = f'demo_profile_{name}_{time.time_ns()}'
        cfg.visualizer.name = cfg.experiment_name
        runner = NpdgRunner.from_cfg(cfg)
        instrument(runner, timer)
        profiler = cProfile.Profile() if top else None
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        runner.train()
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - start
    parts = dict(timer.seconds)
    parts['other'] = wall - sum(parts.values())
    row = dict(config=demo.MODELS[model][name], iters=iters, wall_s=wall,
               s_per_iter=wall / iters,
               parts={k: dict(seconds=v, per_iter_ms=1e3 * v / iters,
                              share=v / wall, calls=timer.calls.get(k, 0))
                      for k, v in sorted(parts.items(), key=lambda kv: -kv[1])})
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats('cumulative').print_stats(top)
        row['cprofile_top'] = text.getvalue().splitlines()[-top - 2:]
    return row


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', default=['baseline', 'npdg'],
                        choices=list(demo.METHODS))
    parser.add_argument('--model', default='r18', choices=list(demo.MODELS),
                        help="the demo's model (the saved profile is r18's)")
    parser.add_argument('--iters', type=int, default=100)
    parser.add_argument('--prune-at', type=int, default=60)
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'synthetic'))
    parser.add_argument('--cprofile', type=int, default=0, metavar='N')
    parser.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results',
                                                  'demo_profile.json'))
    args = parser.parse_args(argv)
    if not 0 < args.prune_at < args.iters:
        parser.error('--prune-at must be between 0 and --iters')
    if not osp.isfile(osp.join(args.data_root, 'manifest.json')):
        prepare_synthetic_domains(args.data_root, seed=0, nproc=2)  # the demo's data
    rows = []
    for name in args.configs:
        row = profile_config(name, args.data_root, args.iters, args.prune_at, args.cprofile,
                             args.model)
        rows.append(row)
        print(f"\n{name}: {row['iters']} iterations in {row['wall_s']:.1f} s "
              f"({row['s_per_iter'] * 1e3:.0f} ms/iteration)")
        for part, v in row['parts'].items():
            if v['share'] < 0.001:
                continue
            print(f"  {part:58s} {v['per_iter_ms']:8.1f} ms/it  {v['share'] * 100:5.1f} %"
                  f"  ({v['calls']} calls)")
        for line in row.get('cprofile_top', []):
            print('   ', line)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(args=vars(args), rows=rows), f, indent=1)
    print(f'saved {args.out}')
    return rows


if __name__ == '__main__':
    main()
