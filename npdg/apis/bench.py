"""The CPU benchmark regime shared by benchmarks/accuracy.py and tools/compare.py.

* Data: ``data/synthetic_bench`` (appearance shift 3, 800 synthetic GTA5
  frames: 680 train, 120 held out), made here when absent.
* Warm start: ``configs/bench/pretrain_source.py`` (the stand-in for ImageNet
  weights, NOT ImageNet), trained once per config and code version.
* Runs are cached in ``<work_dir>/<name>_<key>/result.json``; the key hashes
  the resolved config (warm-start path included) and npdg's source code, so
  a changed config or code reruns and never reuses. A run killed mid-way
  resumes from its last checkpoint (``experiment.train``).
"""
import json
import math
import os
import os.path as osp
import statistics

from npdg.apis import experiment
from npdg.apis.demo import run_one
from npdg.apis.synthetic_data import prepare_synthetic_domains

DATA = dict(root='data/synthetic_bench', appearance_shift=3.0, gta_frames=800)
PRETRAIN = 'configs/bench/pretrain_source.py'


def mean_std(values):
    """Mean and sample standard deviation (0 for one value; NaN if any value is NaN)."""
    values = list(values)
    if any(math.isnan(v) for v in values):  # statistics.stdev raises on NaN
        return (float('nan'), float('nan'))
    return (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def prepare_data(root=DATA['root']):
    """Make the regime's synthetic domains when absent."""
    prepare_synthetic_domains(root, seed=0, appearance_shift=DATA['appearance_shift'],
                              num_images={'gta': {'all': DATA['gta_frames']}})


def load(config, options, data_root=DATA['root']):
    """The resolved config of a run."""
    return experiment.retarget_data_root(experiment.load_config(config, options), data_root)


def cached(name, config, options, work_dir, data_root=DATA['root'], log=print):
    """Train and test one run, or reuse the finished run with the same key.

    Args:
        name (str): Run name (folder prefix).
        config (str): Config path.
        options (dict): Config overrides.
        work_dir (str): Parent folder of the runs.
        data_root (str): Data root the config is pointed at.
        log (Callable): Progress printer.

    Returns:
        dict: :func:`npdg.apis.demo.run_one`'s result plus ``run_key``,
        ``options``, ``warm_start``, ``work_dir`` and the last prune step's
        record (``pruning``) with its per-layer widths (``layers``).
    """
    cfg = load(config, options, data_root)
    key = experiment.run_key(cfg)
    work = osp.join(work_dir, f'{name}_{key}')
    cache = osp.join(work, 'result.json')
    if osp.isfile(cache):
        with open(cache) as f:
            result = json.load(f)
        if result.get('run_key') == key:
            log(f'[bench] {name}: cached ({work})')
            return result
    log(f'[bench] {name}: training ({work})')
    result = run_one(config, work, data_root, cfg_options=options)
    result.update(run_key=key, options={k: str(v) for k, v in options.items()},
                  warm_start=options.get('warm_start'), work_dir=work)
    report = osp.join(work, 'train', 'pruning', 'pruning_report.json')
    if osp.isfile(report):
        with open(report) as f:
            steps = json.load(f)['steps']
        result['pruning'] = {k: steps[-1].get(k) for k in (
            'iter', 'removed', 'total', 'budget', 'gflops_before', 'gflops_after',
            'target_gflops', 'shortfall')}
        result['pruning']['seconds'] = sum(s.get('seconds', 0.0) for s in steps)
        result['pruning']['steps'] = len(steps)
        first = {e['name']: e['units_before'] for e in steps[0]['layers']}
        result['pruning']['layers'] = {e['name']: [first.get(e['name'], e['units_before']),
                                                   e['units_after']]
                                       for e in steps[-1]['layers']}
    os.makedirs(work, exist_ok=True)
    with open(cache, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def warm_start(path, work_dir, log=print, config=PRETRAIN):
    """The warm start: ``path`` when given, else trained once per config and code version.

    Args:
        path (str | None): A checkpoint to use.
        work_dir (str): Where the trained one is cached.
        log (Callable): Progress printer.
        config (str): The warm start's recipe (the regime's ``warm_start`` in
            :mod:`npdg.apis.studies`).

    Returns:
        tuple[str, dict | None]: The checkpoint and (when trained here) its result.

    Raises:
        FileNotFoundError: ``path`` given but missing.
    """
    if path:
        if not osp.isfile(path):
            raise FileNotFoundError(f'--warm-start {path}: no such file. Train it with '
                                    f'`python tools/train.py {config}` or leave the option out.')
        return path, None
    result = cached('pretrain_source', config, {}, work_dir, DATA['root'], log)
    return result['checkpoint'], result
