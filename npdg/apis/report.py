"""One comparison's bookkeeping: run names, cache checks, rows, summaries, tables, plots, bars.

Used by ``tools/compare.py`` (the CLI) and by anything else that reads a comparison's
cached runs; the studies themselves are data in :mod:`npdg.apis.studies`. Heavy imports
(torch, matplotlib) happen inside the functions, so that planning a study stays fast.
"""
import os.path as osp

from npdg.apis import studies

TARGETS = studies.TARGETS
FIELDS = ['arm', 'budget', 'seed', *[f'{t}_mIoU' for t in TARGETS], 'mean_target_mIoU',
          'source_mIoU', 'pseudo_target_mIoU', 'gflops', 'params', 'latency_ms',
          'train_seconds', 'prune_seconds', 'units_removed', 'units_total', 'config',
          'code_version', 'work_dir']


def finished(run, options, work_dir):
    """Whether the run with these options is in the cache (same config and code)."""
    import json

    from npdg.apis import bench, experiment
    key = experiment.run_key(bench.load(run['config'], options))
    path = osp.join(work_dir, f'{run_name(run)}_{key}', 'result.json')
    if not osp.isfile(path):
        return False
    with open(path) as f:
        return json.load(f).get('run_key') == key


def run_name(run):
    """Folder prefix of a run."""
    return f"{run['arm']}{'_' + run['budget'] if run['budget'] else ''}_seed{run['seed']}"


def row_of(run, result, code_version):
    """One results.csv row."""
    pruning = result.get('pruning') or {}
    row = dict(arm=run['arm'], budget=run['budget'] or 'unpruned', seed=run['seed'],
               mean_target_mIoU=result['mean_mIoU'], source_mIoU=result['source_mIoU'],
               pseudo_target_mIoU=result.get('pseudo_target_mIoU', float('nan')),
               gflops=result['gflops'], params=result['params'],
               latency_ms=result['latency_ms'], train_seconds=result['train_seconds'],
               prune_seconds=pruning.get('seconds', 0.0),
               units_removed=pruning.get('removed', 0), units_total=pruning.get('total', 0),
               config=run['config'], code_version=code_version,
               work_dir=result.get('work_dir', ''))
    for t in TARGETS:
        row[f'{t}_mIoU'] = result['targets'][t]['mIoU']
    return row


def summarise(rows):
    """(arm, budget) -> mean +- std over seeds of every figure."""
    from npdg.apis.bench import mean_std
    groups = {}
    for row in rows:
        groups.setdefault((row['arm'], row['budget']), []).append(row)
    keys = [f'{t}_mIoU' for t in TARGETS] + [
        'mean_target_mIoU', 'source_mIoU', 'pseudo_target_mIoU', 'gflops', 'params',
        'latency_ms', 'train_seconds', 'prune_seconds']
    return {group: dict({k: mean_std([float(r[k]) for r in members]) for k in keys},
                        seeds=sorted(r['seed'] for r in members))
            for group, members in groups.items()}


def markdown(summary, regime=studies.DEFAULT_REGIME, reference='perturb_only'):
    """Markdown table, one row per (arm, budget); delta against ``reference``."""
    ARMS, BUDGETS = studies.arms(regime), studies.REGIMES[regime]['budgets']
    head = ['arm', 'budget', 'seeds', *TARGETS, 'mean target', 'vs perturb_only',
            'source (held-out)', 'pseudo-target', 'GFLOPs', 'params (M)', 'latency (ms)',
            'train (s)', 'prune step (s)']
    ref = summary.get((reference, 'unpruned'))
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    order = {b: i for i, b in enumerate(['unpruned', *BUDGETS])}
    for (arm, budget), e in sorted(summary.items(),
                                   key=lambda kv: (order.get(kv[0][1], 9), ARMS.index(kv[0][0])
                                                   if kv[0][0] in ARMS else 99)):
        delta = '' if ref is None else f"{e['mean_target_mIoU'][0] - ref['mean_target_mIoU'][0]:+.2f}"
        cells = [arm, budget, str(len(e['seeds']))] + [
            f'{e[k][0]:.2f} +- {e[k][1]:.2f}' for k in
            (*[f'{t}_mIoU' for t in TARGETS], 'mean_target_mIoU')] + [delta] + [
            f'{e[k][0]:.2f} +- {e[k][1]:.2f}' for k in ('source_mIoU', 'pseudo_target_mIoU')] + [
            f"{e['gflops'][0]:.3f}", f"{e['params'][0] / 1e6:.2f}",
            f"{e['latency_ms'][0]:.1f}", f"{e['train_seconds'][0]:.0f}",
            f"{e['prune_seconds'][0]:.1f}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def _save(fig, ax, path, xlabel, ylabel, title):
    """Label, grid, legend, save and close one figure."""
    import matplotlib.pyplot as plt
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def budget_of(cfg):
    """A run's budget in words, from its resolved config: ``flops50``, ``r30`` or ``unpruned``."""
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type') == 'UnitPruningHook':
            if hook.get('target_flops_ratio') is not None:
                return f"flops{round(100 * hook['target_flops_ratio'])}"
            if hook.get('ratio') is not None:
                return f"r{round(100 * hook['ratio'])}"
            return 'pruned'
    return 'unpruned'


def _colors(arms):
    import matplotlib.pyplot as plt
    cmap = plt.get_cmap('tab20')
    return {arm: cmap(i / max(1, len(arms) - 1)) for i, arm in enumerate(arms)}


def plot_miou_vs_gflops(summary, path, title, arms=None):
    """Mean target mIoU (+- std over seeds) against GFLOPs, one point per (arm, budget).

    Args:
        summary (dict): :func:`summarise`'s output.
        path (str): PNG to write.
        title (str): Figure title.
        arms (list[str], optional): Colour and spreading order (default: the summary's).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    arms = arms or list(dict.fromkeys(arm for arm, _ in summary))
    markers = dict(unpruned='s', r30='o', flops75='o', flops50='^')
    colors = _colors(arms)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    span = max(e['gflops'][0] for e in summary.values())
    for (arm, budget), e in summary.items():
        # arms at one budget share their GFLOPs: spread them a little to keep them apart
        shift = 0.006 * span * (arms.index(arm) - len(arms) / 2) if arm in arms else 0.0
        ax.errorbar(e['gflops'][0] + shift, e['mean_target_mIoU'][0],
                    yerr=e['mean_target_mIoU'][1],
                    fmt=markers.get(budget, 'o'), color=colors.get(arm), capsize=2,
                    label=f'{arm} ({budget})')
    _save(fig, ax, path, 'GFLOPs (3x128x256; arms spread apart by a few %)',
          'mean target mIoU (%)', title)


def plots(summary, results, out_dir, regime=studies.DEFAULT_REGIME):
    """mIoU vs GFLOPs, per-target bars, kept width per layer."""
    ARMS, BUDGETS = studies.arms(regime), studies.REGIMES[regime]['budgets']
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    colors = _colors(ARMS)
    plot_miou_vs_gflops(summary, osp.join(out_dir, 'miou_vs_gflops.png'),
                        f'criteria, {regime} regime (mean +- std over seeds)', ARMS)

    for budget in [b for b in BUDGETS if any(g[1] == b for g in summary)]:
        arms = sorted([g for g in summary if g[1] in (budget, 'unpruned')],
                      key=lambda g: summary[g]['mean_target_mIoU'][0])
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(arms) + 1.2))
        ax.barh(range(len(arms)), [summary[g]['mean_target_mIoU'][0] for g in arms],
                xerr=[summary[g]['mean_target_mIoU'][1] for g in arms], capsize=2,
                color=[colors.get(g[0]) for g in arms], label='mean +- std over seeds')
        ax.set_yticks(range(len(arms)))
        ax.set_yticklabels([f'{a} ({b})' for a, b in arms], fontsize=7)
        _save(fig, ax, osp.join(out_dir, f'ranking_{budget}.png'), 'mean target mIoU (%)', '',
              f'unseen targets, {budget} vs the unpruned controls')

    groups = sorted(summary, key=lambda g: (g[1] != 'unpruned', g[1], ARMS.index(g[0])
                                            if g[0] in ARMS else 99))
    fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(groups)), 4))
    width = 0.8 / len(TARGETS)
    for i, t in enumerate(TARGETS):
        ax.bar([k + i * width for k in range(len(groups))],
               [summary[g][f'{t}_mIoU'][0] for g in groups], width,
               yerr=[summary[g][f'{t}_mIoU'][1] for g in groups], label=t, capsize=1)
    ax.set_xticks([k + width for k in range(len(groups))])
    ax.set_xticklabels([f'{a}\n{b}' for a, b in groups], rotation=90, fontsize=6)
    ax.set_ylabel('mIoU (%)')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(osp.join(out_dir, 'per_target.png'), dpi=120)
    plt.close(fig)

    widths = {}
    for run, result in results:
        layers = (result.get('pruning') or {}).get('layers')
        if layers and run['seed'] == min(r['seed'] for r, _ in results) and \
                run['budget'] == 'flops50':
            widths[run['arm']] = layers
    if widths:
        names = list(next(iter(widths.values())))
        fig, ax = plt.subplots(figsize=(max(8, 0.12 * len(names)), 4))
        for arm, layers in widths.items():
            ax.plot(range(len(names)), [layers[n][1] / max(1, layers[n][0]) if n in layers
                                        else float('nan') for n in names],
                    marker='.', lw=0.8, color=colors.get(arm), label=arm)
        _save(fig, ax, osp.join(out_dir, 'kept_width.png'), 'unit layer (graph order)',
              'kept share of units', 'kept width per layer at half the FLOPs (first seed)')


def bars(regime, seeds, results, extra_options, work_dir, log, warm=None):
    """The regime's sanity bars from its bar runs and the main runs' source-only.

    (a) held-out source moves < 1 mIoU when source-only trains 1.5x longer;
    (b) source minus mean target of source-only >= 15 mIoU; (c) the per-target
    oracles; (d) (ImageNet regime) plain L1 at 0.75x FLOPs, without the
    perturbation, loses <= 2 points of held-out source against source-only.

    Returns:
        tuple[list[str], dict]: Markdown lines and the figures.
    """
    from npdg.apis import bench
    from npdg.apis.bench import mean_std
    r = studies.REGIMES[regime]
    runs = {}
    for name, (config, options) in r['bars'].items():
        for seed in seeds:
            opts = dict(options, **extra_options, **{'randomness.seed': seed})
            if warm:
                opts['warm_start'] = warm
            runs.setdefault(name, {})[seed] = bench.cached(f'{name}_seed{seed}', config, opts,
                                                           work_dir, log=log)
    source = {run['seed']: res for run, res in results
              if run['arm'] == 'source_only' and run['seed'] in seeds}
    figs = {}
    if len(source) != len(seeds):
        raise RuntimeError('--bars needs the source_only runs of the same seeds: run the '
                           'comparison with --arms source_only (or all arms) first')
    src = [source[k]['source_mIoU'] for k in seeds]
    gap = [source[k]['source_mIoU'] - source[k]['mean_mIoU'] for k in seeds]
    longer = [runs['source_only_x1_5'][k]['source_mIoU'] for k in seeds]
    figs['a_longer_minus_source'] = mean_std([b - a for a, b in zip(src, longer)])
    figs['b_source_minus_mean_target'] = mean_std(gap)
    for t in TARGETS:
        if f'oracle_{t}' in runs:
            figs[f'c_oracle_{t}'] = mean_std([runs[f'oracle_{t}'][k]['targets'][t]['mIoU']
                                              for k in seeds])
            figs[f'c_source_only_{t}'] = mean_std([source[k]['targets'][t]['mIoU']
                                                   for k in seeds])
    if 'l1_source_flops75' in runs:
        figs['d_l1_flops75_minus_source'] = mean_std(
            [runs['l1_source_flops75'][k]['source_mIoU'] - source[k]['source_mIoU']
             for k in seeds])
        figs['d_gflops'] = mean_std([runs['l1_source_flops75'][k]['gflops'] for k in seeds])
    checks = dict(a=('|a_longer_minus_source| < 1', abs(figs['a_longer_minus_source'][0]) < 1),
                  b=('b_source_minus_mean_target >= 15',
                     figs['b_source_minus_mean_target'][0] >= 15))
    if 'd_l1_flops75_minus_source' in figs:
        checks['d'] = ('d_l1_flops75_minus_source >= -2',
                       figs['d_l1_flops75_minus_source'][0] >= -2)
    lines = [f'Bars of the {regime} regime (seeds {seeds}; mean +- std; mIoU %; held-out '
             'source frames unless named):', '', '| figure | value |', '|---|---:|']
    lines += [f'| {k} | {m:.2f} +- {sd:.2f} |' for k, (m, sd) in figs.items()]
    lines += ['', '| bar | rule | holds |', '|---|---|---|']
    lines += [f'| ({k}) | {rule} | {"yes" if ok else "NO"} |' for k, (rule, ok) in checks.items()]
    return lines, dict(figures=figs, checks={k: v[1] for k, v in checks.items()}, runs=runs)
