"""Accuracy on the synthetic domains: NPDG beside its equal-compute controls.

    python benchmarks/accuracy.py [--seeds 0 1 2] [--methods baseline perturb_only npdg ...]

Arms (CPU demo recipe: DeepLabV3+ R18 from scratch, 800 iterations, prune after
500; every pruned arm removes r = 0.3 of the units; see configs/controls/demo_r18/):
source-only (``baseline``), the same AdvStyle perturbation unpruned
(``perturb_only``), NPDG, network slimming, per-layer-normalised L1 and L2.
Each arm trains once per seed (``randomness.seed``: model init, data order,
style draws and statistics sampling all follow it; the synthetic domains are
the same), then is tested on synthetic Cityscapes, BDD100K and Mapillary
(narrow mapping) and on held-out synthetic GTA5 (the source; nothing is chosen
on the targets: the last iteration is reported). Prints mean +- std over seeds
of per-target and mean mIoU, source mIoU, GFLOPs, params, latency and train
time; saves benchmarks/results/accuracy.json and accuracy.png (mean target
mIoU against GFLOPs).

Runs are cached in ``<work-dir>/<arm>_seed<k>_<key>/`` where the key hashes the
resolved config and npdg's source code: a changed config or code reruns, never
reuses. ``--cfg-options`` go to the arms that read them (e.g. max_iters=1600).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import npdg  # noqa: E402,F401
from mmengine.config import DictAction  # noqa: E402

from npdg.apis import experiment  # noqa: E402
from npdg.apis.demo import TARGETS, run_one  # noqa: E402
from npdg.apis.synthetic_data import prepare_synthetic_domains  # noqa: E402
from npdg.utils.settings import split_overrides  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = dict(baseline='configs/demo/deeplab_r18_synthetic.py',
               perturb_only='configs/controls/demo_r18/perturb_only.py',
               npdg='configs/demo/npdg_deeplab_r18_synthetic.py',
               slimming='configs/controls/demo_r18/slimming.py',
               l1='configs/controls/demo_r18/l1.py',
               l2='configs/controls/demo_r18/l2.py')
COLUMNS = (*TARGETS, 'mean', 'source')


def mean_std(values):
    """Mean and sample standard deviation (0 for one value)."""
    return (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def run_cached(method, seed, options, work_dir, data_root):
    """Train and test one arm for one seed, or reuse the run with the same key."""
    opts = dict(options, **{'randomness.seed': seed})
    cfg = experiment.retarget_data_root(
        experiment.load_config(CONFIGS[method], opts), data_root)
    key = experiment.run_key(cfg)
    work = osp.join(work_dir, f'{method}_seed{seed}_{key}')
    cache = osp.join(work, 'result.json')
    if osp.isfile(cache):
        result = json.load(open(cache))
        if result.get('run_key') == key:
            print(f'[accuracy] {method} seed {seed}: cached ({work})', flush=True)
            return result
    print(f'[accuracy] {method} seed {seed}: training ({work})', flush=True)
    result = run_one(CONFIGS[method], work, data_root, cfg_options=opts)
    result['run_key'] = key
    os.makedirs(work, exist_ok=True)
    json.dump(result, open(cache, 'w'), indent=1)
    return result


def summarise(runs):
    """Per arm: mean +- std over seeds of every figure."""
    summary = {}
    for method, by_seed in runs.items():
        rows = list(by_seed.values())
        entry = {t: mean_std([r['targets'][t]['mIoU'] for r in rows]) for t in TARGETS}
        entry['mean'] = mean_std([r['mean_mIoU'] for r in rows])
        entry['source'] = mean_std([r['source_mIoU'] for r in rows])
        for key, name in (('gflops', 'gflops'), ('params', 'params'),
                          ('latency_ms', 'latency_ms'), ('train_seconds', 'train_s')):
            entry[name] = mean_std([r[key] for r in rows])
        entry['seeds'] = sorted(by_seed)
        summary[method] = entry
    return summary


def table(summary):
    """Markdown table of the summary."""
    head = ['arm', *TARGETS, 'mean target', 'source (held-out)', 'GFLOPs', 'params (M)',
            'latency (ms)', 'train (s)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for method, e in summary.items():
        cells = [method] + [f'{e[k][0]:.2f} +- {e[k][1]:.2f}' for k in COLUMNS] + [
            f"{e['gflops'][0]:.3f}", f"{e['params'][0] / 1e6:.2f}",
            f"{e['latency_ms'][0]:.1f}", f"{e['train_s'][0]:.0f}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def plot(summary, path):
    """Mean target mIoU (+- std) against GFLOPs, one point per arm."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, e in summary.items():
        ax.errorbar(e['gflops'][0], e['mean'][0], yerr=e['mean'][1], fmt='o', capsize=3,
                    label=method)
    ax.set_xlabel('GFLOPs (3x128x256)')
    ax.set_ylabel('mean target mIoU (%)')
    ax.set_title('synthetic domains, mean +- std over seeds')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--work-dir', default='work_dirs/bench_accuracy')
    parser.add_argument('--out', default=osp.join('benchmarks', 'results', 'accuracy'))
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args()
    os.chdir(ROOT)
    prepare_synthetic_domains(args.data_root)
    options = split_overrides({m: CONFIGS[m] for m in args.methods}, args.cfg_options,
                              read_keys=experiment.READ_KEYS)
    runs = {m: {} for m in args.methods}
    for seed in args.seeds:
        for method in args.methods:
            runs[method][seed] = run_cached(method, seed, options[method], args.work_dir,
                                            args.data_root)
    summary = summarise(runs)
    lines = table(summary)
    print('\n'.join(lines))
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    json.dump(dict(summary=summary, runs=runs, table=lines, code_version=experiment.code_version(),
                   note='mIoU %, 19 classes, Mapillary narrow mapping; FLOPs at 3x128x256; '
                        'last iteration, nothing selected on the targets'),
              open(args.out + '.json', 'w'), indent=1)
    plot(summary, args.out + '.png')
    print(f'saved {args.out}.json and {args.out}.png')


if __name__ == '__main__':
    main()
