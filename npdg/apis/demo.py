"""The CPU demo: synthetic GTA5 -> synthetic Cityscapes / BDD100K / Mapillary."""
import json
import os
import os.path as osp
import sys
import time

from mmengine.logging import MMLogger, print_log

from npdg.apis import experiment
from npdg.apis.progress import ProgressLine, quiet_console
from npdg.apis.synthetic_data import prepare_synthetic_domains
from npdg.utils.settings import split_overrides

TARGETS = ('cityscapes', 'bdd100k', 'mapillary')
# The demo's models: name -> its three runs' configs. ``perturb`` is unpruned with
# NPDG's perturbation: it isolates what pruning adds.
MODELS = dict(
    # default: EfficientNet-Lite0 from ImageNet, 450 iterations per run (about 9 min)
    effl0=dict(baseline='configs/demo/deeplab_effl0_synthetic.py',
               perturb='configs/controls/demo_effl0/perturb_only.py',
               npdg='configs/demo/npdg_deeplab_effl0_synthetic.py'),
    # a small ResNet-18 trained from scratch, 800 iterations per run (about 16 min)
    r18=dict(baseline='configs/demo/deeplab_r18_synthetic.py',
             perturb='configs/controls/demo_r18/perturb_only.py',
             npdg='configs/demo/npdg_deeplab_r18_synthetic.py'),
)
DEFAULT_MODEL = 'effl0'
CONFIGS = MODELS[DEFAULT_MODEL]
METHODS = tuple(CONFIGS)


def run_one(config, work_dir, data_root, cfg_options=None, label=None):
    """Train and evaluate one demo config.

    Args:
        config (str): Config path.
        work_dir (str): Output folder of this run.
        data_root (str): Root of the synthetic domains.
        cfg_options (dict, optional): Config overrides.
        label (str, optional): Show one progress line under this name and keep
            mmengine's INFO lines off the console (they stay in the work dir's
            logs); None logs as usual.

    Returns:
        dict: ``targets.<name>.mIoU``, ``mean_mIoU``, ``source_mIoU``,
        ``pseudo_target_mIoU`` (when the config defines
        ``syn_pseudo_target_pipeline``), ``gflops``, ``params``, ``latency_ms``, ``checkpoint``, timings.
    """
    cfg = experiment.retarget_data_root(experiment.load_config(config, cfg_options), data_root)
    t0 = time.time()
    hooks = [ProgressLine(label)] if label else []
    with quiet_console(bool(label)):
        ckpt = experiment.train(experiment.without_validation(cfg), osp.join(work_dir, 'train'),
                                hooks=hooks)
        train_s = time.time() - t0
        result = _evaluate(cfg, ckpt, work_dir, label)
    result.update(config=config, train_seconds=round(train_s, 1))
    return result


def _evaluate(cfg, ckpt, work_dir, label=None):
    """Test ``ckpt`` on the targets, the held-out source (and pseudo-target); measure it."""
    if label:
        _say(f'{label:<14} testing on {", ".join(TARGETS)} and held-out source')
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
        flops_input=cost['input_shape'], checkpoint=ckpt)
    if pseudo is not None:
        result['pseudo_target_mIoU'] = float(pseudo)
    result['source_target_gap'] = result['source_mIoU'] - result['mean_mIoU']
    return result


def _say(text):
    """One line on the console, past :func:`quiet_console`."""
    sys.__stdout__.write(text + '\n')
    sys.__stdout__.flush()


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


def plot_miou_vs_gflops(rows, path, title):
    """Mean target mIoU (and held-out source mIoU) against GFLOPs, one point per run.

    Args:
        rows (dict): Run name -> result of :func:`run_one`.
        path (str): PNG to write.
        title (str): Figure title.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (name, r) in enumerate(rows.items()):
        color = plt.cm.tab10(i)
        ax.plot(r['gflops'], r['mean_mIoU'], 'o', color=color, label=f'{name}: mean target')
        ax.plot(r['gflops'], r['source_mIoU'], 's', mfc='none', color=color,
                label=f'{name}: held-out source')
        ax.annotate(name, (r['gflops'], r['mean_mIoU']), textcoords='offset points',
                    xytext=(5, -10), fontsize=8)
    ax.set_xlabel(f'GFLOPs at 3x{next(iter(rows.values()))["flops_input"].split("x", 1)[1]}')
    ax.set_ylabel('mIoU (%)')
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demo(data_root='data/synthetic', work_dir='work_dirs/demo', seed=0,
             cfg_options=None, nproc=2, methods=METHODS, model=DEFAULT_MODEL, quiet=True):
    """Generate data if absent, train the baseline, the perturbation-only control and
    NPDG, test, summarise.

    Args:
        data_root (str): Where the synthetic domains live (made if absent).
        work_dir (str): Output folder; ``summary.json`` and ``miou_vs_gflops.png`` go there.
        seed (int): Seed of the data generator.
        cfg_options (dict, optional): Overrides for the training configs.
        nproc (int): Processes for data generation/conversion.
        methods (Sequence[str]): Any of ``'baseline'`` (source-only), ``'perturb'``
            (same perturbation as NPDG, unpruned) and ``'npdg'``.
        model (str): A key of :data:`MODELS` (``'effl0'``: ImageNet-initialised
            EfficientNet-Lite0; ``'r18'``: ResNet-18 from scratch).
        quiet (bool): One progress line per run on the console (full logs in
            each run's work dir); False shows mmengine's log lines.

    Returns:
        dict: The summary written to ``summary.json``: the baseline's
        results at the top level, NPDG's under ``npdg``, the perturbation-only
        control's under ``perturb_only``.
    """
    if model not in MODELS:
        raise KeyError(f'demo model {model!r}: choose one of {sorted(MODELS)}')
    t0 = time.time()
    # The demo's own lines: a logger made here writes to the console even after
    # the runs' loggers (made inside quiet_console) became mmengine's current one.
    log = MMLogger.get_instance('npdg_demo')
    configs = MODELS[model]
    print_log(f'[demo] 1/3 synthetic domains in {data_root}', logger=log)
    prepare_synthetic_domains(data_root, seed=seed, nproc=nproc)
    # Each override goes to the runs that read it (prune_ratio: NPDG only).
    options = split_overrides({name: configs[name] for name in methods}, cfg_options,
                              read_keys=experiment.READ_KEYS)
    print_log(f'[demo] 2/3 training {", ".join(methods)} ({model}) on synthetic GTA5; '
              f'full logs in {work_dir}/<run>/', logger=log)
    rows = {}
    for name in methods:
        if not quiet:
            print_log(f'[demo] training {name} ({configs[name]})', logger=log)
        rows[name] = run_one(configs[name], osp.join(work_dir, name), data_root,
                             options[name], label=name if quiet else None)
    baseline = rows.get('baseline') or next(iter(rows.values()))
    summary = dict(baseline)
    if 'npdg' in rows:
        summary['npdg'] = rows['npdg']
    if 'perturb' in rows:
        summary['perturb_only'] = rows['perturb']
    summary['model'] = model
    summary['mIoU_metric_note'] = ('mIoU in %, 19 Cityscapes classes; Mapillary with the '
                                   'narrow mapping; FLOPs at ' + baseline['flops_input'])
    summary['wall_seconds'] = round(time.time() - t0, 1)
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    png = osp.join(work_dir, 'miou_vs_gflops.png')
    plot_miou_vs_gflops(rows, png, f'npdg demo ({model}, synthetic GTA5 -> 3 synthetic targets)')
    print_log('[demo] 3/3 results (mIoU %, FLOPs at 3x' + baseline['flops_input'].split('x', 1)[1]
              + ', latency median batch 1 CPU)\n' + format_table(rows),
              logger=log)
    print_log(f'[demo] source-target gap {baseline["source_target_gap"]:.2f} mIoU; '
              f'summary in {osp.join(work_dir, "summary.json")}, plot in {png} '
              f'({summary["wall_seconds"]:.0f} s)', logger=log)
    return summary
