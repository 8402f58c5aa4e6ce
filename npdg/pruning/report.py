"""Pruning report: JSON per step and a PNG figure."""
import json
import os
import os.path as osp

import numpy as np


def write_json(path, steps, settings=None, config_settings=None):
    """Write the report of all prune steps so far.

    Args:
        path (str): Output file.
        steps (list[dict]): One dict per step (plain data).
        settings (dict, optional): The pruning hook's arguments as it ran.
        config_settings (dict, optional): The config's top-level settings that
            its hooks referred to (``'${name}'``), with the values that ran.
    """
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(settings=settings or {}, config_settings=config_settings or {},
                       steps=steps), f, indent=1, default=str)


def _values(layers, key):
    out = [v for layer in layers for v in layer.get(key, [])]
    return np.asarray(out, dtype=float)


def write_figure(path, step):
    """Kept ratio per layer and histograms of U, B, w and |gamma|.

    Args:
        path (str): Output PNG.
        step (dict): One step of the report.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    layers = step['layers']
    fig = plt.figure(figsize=(14, 8))
    top = fig.add_subplot(2, 1, 1)
    ratios = [l['units_after'] / max(1, l['units_before']) for l in layers]
    colors = ['tab:orange' if l['kind'] == 'head' else 'tab:blue' for l in layers]
    top.bar(range(len(layers)), ratios, color=colors)
    top.set_ylim(0, 1.05)
    top.set_ylabel('kept ratio')
    top.set_title(f"iter {step['iter']}: removed {step['removed']} of {step['total']} units "
                  f"(blue: channel groups, orange: attention heads); "
                  f"GFLOPs {step['gflops_before']:.2f} -> {step['gflops_after']:.2f}")
    top.set_xticks(range(len(layers)))
    top.set_xticklabels([l['name'] for l in layers], rotation=90, fontsize=5)
    for i, (key, label) in enumerate([('unary', 'U (style variance, normalised)'),
                                      ('binary', 'B (mean |corr|, normalised)'),
                                      ('w', 'w = lam U + (1 - lam) B'),
                                      ('importance', 'importance (|gamma| for NPDG)')]):
        ax = fig.add_subplot(2, 4, 5 + i)
        vals = _values(layers, key)
        if vals.size:
            ax.hist(vals, bins=40, color='tab:gray')
        else:
            ax.text(0.5, 0.5, 'not collected', ha='center', va='center')
        ax.set_title(label, fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
