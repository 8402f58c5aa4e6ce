"""Training-iteration overhead of NPDG's hooks, measured side by side.

    python benchmarks/overhead.py [--iters 30] [--rounds 2]

Model and data: the CPU demo (DeepLabV3+ R18 OS16, batch 8, 96x96 crops of
synthetic GTA5; run tools/demo.py or tools/make_synthetic_domains.py first).
Variants, each trained for ``--iters`` iterations and interleaved over
``--rounds`` rounds in one process:

* plain: no npdg hook;
* stats+sparsity: SensitivityStatisticsHook + SensitivitySparsityHook, no
  perturbation (statistics collected on every ``--stats-interval``-th iteration);
* +AdvStyle, +DSU, +DSP (DSP with random VGG/decoder weights: same cost as
  trained ones): the perturbation hook added to stats+sparsity.

Reports the median iteration time of each variant, ratios to plain, and for
stats+sparsity also the ratio at the full recipe's schedule (statistics on 4
of every 500 iterations) from the times of collecting and non-collecting
iterations. Saves benchmarks/results/overhead.json.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmseg.registry import HOOKS  # noqa: E402

import npdg  # noqa: E402,F401
from npdg.engine.runner import NpdgRunner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@HOOKS.register_module(force=True)
class IterClockHook(Hook):
    """Wall time of every training iteration (data loading included)."""
    priority = 'HIGHEST'

    def __init__(self):
        self.times, self._t = [], None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._t = time.perf_counter() if self._t is None else self._t

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        now = time.perf_counter()
        self.times.append(now - self._t)
        self._t = now


def dsp_weights(folder):
    """Random-weight DSP files (for timing only) made with tools/train_dsp.py."""
    imgs = osp.join(ROOT, 'data', 'synthetic', 'gta', 'images')
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train_dsp.py'), '--content-dir',
                    imgs, '--style-dir', imgs, '--random-vgg', '--out', folder, '--iters', '1',
                    '--size', '64', '--batch', '2'], check=True, capture_output=True)
    return dict(type='DSP', vgg_checkpoint=osp.join(folder, 'vgg_random.pth'),
                decoder_checkpoint=osp.join(folder, 'decoder.pth'))


def variants(interval, dsp_cfg):
    stats = [dict(type='SensitivityStatisticsHook', interval=interval, num_batches=1,
                  num_images=2, num_styles=4, num_positions=256),
             dict(type='SensitivitySparsityHook', s=1e-4)]
    out = {'plain': [], 'stats+sparsity': stats}
    for name, pert in (('AdvStyle', dict(type='AdvStyle')), ('DSU', dict(type='DSUNoise')),
                       ('DSP', dsp_cfg)):
        out[f'+{name}'] = stats + [dict(type='StylePerturbationHook', perturbation=pert)]
    return out


def run(hooks, iters, work):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', 'deeplab_r18_synthetic.py'))
    cfg.merge_from_dict(dict(
        work_dir=work, train_cfg=dict(max_iters=iters),
        train_dataloader=dict(num_workers=2, persistent_workers=False),
        default_hooks=dict(checkpoint=dict(interval=10 ** 6, save_last=False),
                           logger=dict(interval=10 ** 6)),
        val_dataloader=None, val_cfg=None, val_evaluator=None, log_level='WARNING'))
    cfg.custom_hooks = list(hooks) + [dict(type='IterClockHook')]
    runner = NpdgRunner.from_cfg(cfg)
    runner.train()
    return next(h for h in runner.hooks if isinstance(h, IterClockHook)).times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--skip', type=int, default=5, help='warm-up iterations dropped')
    parser.add_argument('--stats-interval', type=int, default=10)
    args = parser.parse_args()
    os.chdir(ROOT)
    tmp = tempfile.mkdtemp()
    table = variants(args.stats_interval, dsp_weights(tmp))
    times = {k: [] for k in table}
    collect, non_collect = [], []
    for _ in range(args.rounds):
        for name, hooks in table.items():
            t = run(hooks, args.iters, osp.join(tmp, name.replace('+', 'p')))
            times[name] += t[args.skip:]
            if name == 'stats+sparsity':
                for i, x in enumerate(t[args.skip:], start=args.skip):
                    (collect if i % args.stats_interval == 0 else non_collect).append(x)
    med = {k: statistics.median(v) for k, v in times.items()}
    plain = med['plain']
    t_sparse = statistics.median(non_collect) if non_collect else med['stats+sparsity']
    t_collect = statistics.median(collect) if collect else t_sparse
    recipe = ((496 * t_sparse + 4 * t_collect) / 500) / plain
    result = dict(
        model='DeepLabV3+ R18 OS16, batch 8, 96x96, CPU', threads=__import__('torch').get_num_threads(),
        iters=args.iters, rounds=args.rounds, stats_interval=args.stats_interval,
        median_s=med, ratio_to_plain={k: v / plain for k, v in med.items()},
        stats_sparsity_recipe_ratio=recipe,
        note='ratios measured side by side in one process; perturbation ratios include '
             'stats+sparsity; recipe ratio: statistics on 4 of every 500 iterations')
    for k, v in med.items():
        print(f'{k:15s} {v * 1000:8.1f} ms/iter  x{v / plain:.3f}')
    print(f'stats+sparsity at the recipe schedule (4 of 500 iterations collect): x{recipe:.3f} '
          f'(target <= 1.10)')
    out = osp.join(ROOT, 'benchmarks', 'results', 'overhead.json')
    os.makedirs(osp.dirname(out), exist_ok=True)
    json.dump(result, open(out, 'w'), indent=1)
    print(f'saved {out}')


if __name__ == '__main__':
    main()
