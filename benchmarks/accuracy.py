"""Accuracy on the synthetic domains: baseline vs NPDG vs L1-norm pruning.

    python benchmarks/accuracy.py [--seeds 0 1 2] [--methods baseline npdg l1]

Each method trains with its CPU demo config (same model, data, 800 iterations,
optimizer; NPDG and L1 prune r = 0.3 after 500 iterations, both with the same
AdvStyle perturbation) for every training seed (``randomness.seed``; the data
are the same synthetic domains), then is tested on synthetic Cityscapes,
BDD100K and Mapillary (narrow mapping) and on held-out synthetic GTA5.
Prints mIoU per target as mean +- std over seeds, GFLOPs and params, and
saves benchmarks/results/accuracy.json. Runs that finished are reused.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import npdg  # noqa: E402,F401

from npdg.apis.demo import TARGETS, run_one  # noqa: E402
from npdg.apis.synthetic_data import prepare_synthetic_domains  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = dict(baseline='configs/demo/deeplab_r18_synthetic.py',
               npdg='configs/demo/npdg_deeplab_r18_synthetic.py',
               l1='configs/controls/demo_r18/l1.py')


def mean_std(values):
    return (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--work-dir', default='work_dirs/bench_accuracy')
    args = parser.parse_args()
    os.chdir(ROOT)
    prepare_synthetic_domains(args.data_root)
    runs = {m: {} for m in args.methods}
    for seed in args.seeds:
        for method in args.methods:
            work = osp.join(args.work_dir, f'{method}_seed{seed}')
            cache = osp.join(work, 'result.json')
            if osp.isfile(cache):
                runs[method][seed] = json.load(open(cache))
                continue
            res = run_one(CONFIGS[method], work, args.data_root,
                          cfg_options={'randomness.seed': seed})
            json.dump(res, open(cache, 'w'), indent=1)
            runs[method][seed] = res
    summary = {}
    header = f"{'method':9s} " + ' '.join(f'{t:>15s}' for t in (*TARGETS, 'mean', 'source'))
    lines = [header + '   GFLOPs  params(M)']
    for method, by_seed in runs.items():
        rows = list(by_seed.values())
        entry = {t: mean_std([r['targets'][t]['mIoU'] for r in rows]) for t in TARGETS}
        entry['mean'] = mean_std([r['mean_mIoU'] for r in rows])
        entry['source'] = mean_std([r['source_mIoU'] for r in rows])
        entry['gflops'] = statistics.mean(r['gflops'] for r in rows)
        entry['params_m'] = statistics.mean(r['params'] for r in rows) / 1e6
        entry['seeds'] = sorted(by_seed)
        summary[method] = entry
        lines.append(f'{method:9s} ' + ' '.join(
            f'{entry[k][0]:7.2f} +- {entry[k][1]:4.2f}' for k in (*TARGETS, 'mean', 'source'))
            + f"   {entry['gflops']:6.3f}  {entry['params_m']:8.3f}")
    print('\n'.join(lines))
    out = osp.join(ROOT, 'benchmarks', 'results', 'accuracy.json')
    json.dump(dict(summary=summary, runs=runs, table=lines,
                   note='mIoU %, 19 classes, Mapillary narrow mapping; FLOPs at 3x128x256'),
              open(out, 'w'), indent=1)
    print(f'saved {out}')


if __name__ == '__main__':
    main()
