"""The CPU demo: synthetic GTA5 -> synthetic Cityscapes / BDD100K / Mapillary."""
import json
import os
import os.path as osp
import time

from mmengine.logging import print_log

from npdg.apis import experiment
from npdg.apis.synthetic_data import prepare_synthetic_domains
from npdg.utils.settings import split_overrides

TARGETS = ('cityscapes', 'bdd100k', 'mapillary')
BASELINE_CONFIG = 'configs/demo/deeplab_r18_synthetic.py'
NPDG_CONFIG = 'configs/demo/npdg_deeplab_r18_synthetic.py'
# Unpruned with NPDG's perturbation: isolates what pruning adds.
PERTURB_CONFIG = 'configs/controls/demo_r18/perturb_only.py'
CONFIGS = dict(baseline=BASELINE_CONFIG, perturb=PERTURB_CONFIG, npdg=NPDG_CONFIG)
METHODS = tuple(CONFIGS)


def run_one(config, work_dir, data_root, cfg_options=None):
    """Train and evaluate one demo config.

    Args:
        config (str): Config path.
        work_dir (str): Output folder of this run.
        data_root (str): Root of the synthetic domains.
        cfg_options (dict, optional): Config overrides.

    Returns:
        dict: ``targets.<name>.mIoU``, ``mean_mIoU``, ``source_mIoU``,
        ``pseudo_target_mIoU`` (when the config defines
        ``syn_pseudo_target_pipeline``), ``gflops``, ``params``, ``latency_ms``, ``checkpoint``, timings.
    """
    cfg = experiment.retarget_data_root(experiment.load_config(config, cfg_options), data_root)
    t0 = time.time()
    ckpt = experiment.train(experiment.without_validation(cfg), osp.join(work_dir, 'train'))
    train_s = time.time() - t0
    metrics = experiment.test(cfg, ckpt, osp.join(work_dir, 'test'))
    source = experiment.test(
        cfg, ckpt, osp.join(work_dir, 'test_source'),
        dataset=dict(type='MultiTargetDataset', datasets=dict(gta=cfg.syn_gta_val)),
        targets=['gta'])
    pseudo = None
    if cfg.get('syn_pseudo_target_pipeline'):
        # Held-out source frames re-styled by a fixed random camera: label-free
        # model selection (configs/_base_/datasets/synthetic.py).
        pseudo = experiment.test(
            cfg, ckpt, osp.join(work_dir, 'test_pseudo_target'),
            dataset=dict(type='MultiTargetDataset', datasets=dict(
                pseudo=dict(cfg.syn_gta_val, pipeline=cfg.syn_pseudo_target_pipeline))),
            targets=['pseudo'])['pseudo/mIoU']
    shape = tuple(next(h['input_shape'] for h in cfg.custom_hooks
                       if h['type'] == 'ModelComplexityHook'))
    cost = experiment.measure(cfg, ckpt, shape)
    result = dict(
        targets={t: dict(mIoU=float(metrics[f'{t}/mIoU'])) for t in TARGETS},
        mean_mIoU=float(metrics['mIoU']),
        source_mIoU=float(source['gta/mIoU']),
        gflops=cost['gflops'], params=cost['params'], latency_ms=cost['latency_ms'],
        flops_input=cost['input_shape'], checkpoint=ckpt, config=config,
        train_seconds=round(train_s, 1))
    if pseudo is not None:
        result['pseudo_target_mIoU'] = float(pseudo)
    result['source_target_gap'] = result['source_mIoU'] - result['mean_mIoU']
    return result


def format_table(rows):
    """Render results as a fixed-width table.

    Args:
        rows (dict): Run name -> result of :func:`run_one`.

    Returns:
        str: The table.
    """
    header = ('model', 'source(GTA)', *TARGETS, 'mean', 'GFLOPs', 'params(M)', 'latency(ms)')
    lines = [' | '.join(f'{h:>11}' for h in header)]
    for name, r in rows.items():
        cells = [name, f"{r['source_mIoU']:.2f}",
                 *(f"{r['targets'][t]['mIoU']:.2f}" for t in TARGETS),
                 f"{r['mean_mIoU']:.2f}", f"{r['gflops']:.3f}", f"{r['params'] / 1e6:.3f}",
                 f"{r['latency_ms']:.1f}"]
        lines.append(' | '.join(f'{c:>11}' for c in cells))
    return '\n'.join(lines)


def run_demo(data_root='data/synthetic', work_dir='work_dirs/demo', seed=0,
             cfg_options=None, nproc=2, methods=METHODS):
    """Generate data if absent, train the baseline, the perturbation-only control and
    NPDG, test, summarise.

    Args:
        data_root (str): Where the synthetic domains live (made if absent).
        work_dir (str): Output folder; ``summary.json`` goes there.
        seed (int): Seed of the data generator.
        cfg_options (dict, optional): Overrides for the training configs.
        nproc (int): Processes for data generation/conversion.
        methods (Sequence[str]): Any of ``'baseline'`` (source-only), ``'perturb'``
            (same perturbation as NPDG, unpruned) and ``'npdg'``.

    Returns:
        dict: The summary written to ``summary.json``: the baseline's
        results at the top level, NPDG's under ``npdg``, the perturbation-only
        control's under ``perturb_only``.
    """
    t0 = time.time()
    configs = CONFIGS
    print_log(f'[demo] 1/3 synthetic domains in {data_root}', logger='current')
    prepare_synthetic_domains(data_root, seed=seed, nproc=nproc)
    # Each override goes to the runs that read it (prune_ratio: NPDG only).
    options = split_overrides({name: configs[name] for name in methods}, cfg_options,
                              read_keys=experiment.READ_KEYS)
    rows = {}
    for name in methods:
        print_log(f'[demo] 2/3 training {name} ({configs[name]}) on synthetic GTA5',
                  logger='current')
        rows[name] = run_one(configs[name], osp.join(work_dir, name), data_root,
                             options[name])
    baseline = rows.get('baseline') or next(iter(rows.values()))
    summary = dict(baseline)
    if 'npdg' in rows:
        summary['npdg'] = rows['npdg']
    if 'perturb' in rows:
        summary['perturb_only'] = rows['perturb']
    summary['mIoU_metric_note'] = ('mIoU in %, 19 Cityscapes classes; Mapillary with the '
                                   'narrow mapping; FLOPs at ' + baseline['flops_input'])
    summary['wall_seconds'] = round(time.time() - t0, 1)
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print_log('[demo] 3/3 results (mIoU %, FLOPs at 3x' + baseline['flops_input'].split('x', 1)[1]
              + ', latency median batch 1 CPU)\n' + format_table(rows),
              logger='current')
    print_log(f'[demo] source-target gap {baseline["source_target_gap"]:.2f} mIoU; '
              f'summary written to {osp.join(work_dir, "summary.json")} '
              f'({summary["wall_seconds"]:.0f} s)', logger='current')
    return summary
