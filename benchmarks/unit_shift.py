"""Do NPDG's unit scores find the units that react to the real domain shift?

    python benchmarks/unit_shift.py --checkpoint CKPT [--config configs/bench/npdg.py]

For every BN channel of the model in CKPT (default: the benchmark's warm
start), two figures:

* NPDG's statistics, as the training hook computes them on source images
  only: unary U (variance of the channel's normalised response across K
  AdvStyle styles of one image), binary B (redundancy) and w = lam U + (1-lam) B,
  from ``--batches`` x 2 held-out source images (no target image).
* The measured shift (analysis only, never used to choose anything): the
  distance between the channel's mean normalised response on the held-out
  source frames and on each target's val images, ``|mu_target - mu_source|``
  in units of the running std, averaged over the three targets.

Prints the rank correlation (Spearman) of U, B and w with the measured shift,
pooled over all channels and as the median over layers, and the mean measured
shift of the channels NPDG would push hardest (top 30 % of w in each layer)
against the rest. Saves benchmarks/results/unit_shift.json.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import torch  # noqa: E402

import npdg  # noqa: E402,F401
from npdg.analysis.stages import stage_of  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def rank(x):
    """Ranks of a 1-D tensor (0 = smallest; ties broken by order)."""
    order = torch.argsort(x)
    r = torch.empty_like(order, dtype=torch.float64)
    r[order] = torch.arange(len(x), dtype=torch.float64)
    return r


def spearman(a, b):
    """Spearman rank correlation of two 1-D tensors."""
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den > 0 else float('nan')


def loader(cfg, dataset, batch_size=2):
    """A test-style dataloader over one dataset config."""
    from mmengine.runner import Runner
    return Runner.build_dataloader(dict(
        batch_size=batch_size, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dataset))


def channel_means(model, data_loader, layers, limit=None):
    """Mean normalised BN-input response per channel over a dataset (eval mode)."""
    sums, count, handles = {}, [0], []

    def observer(name):
        def observe(module, args, output):
            x = args[0].detach()
            mean = module.running_mean.view(1, -1, 1, 1)
            std = (module.running_var + module.eps).sqrt().view(1, -1, 1, 1)
            z = ((x - mean) / std).mean(dim=(0, 2, 3)).double()
            sums[name] = sums.get(name, 0) + z
        return observe

    for name, module in layers.items():
        handles.append(module.register_forward_hook(observer(name)))
    try:
        with torch.no_grad():
            for i, batch in enumerate(data_loader):
                if limit is not None and i >= limit:
                    break
                for img, sample in zip(batch['inputs'], batch['data_samples']):
                    data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]),
                                                   False)
                    model._forward(data['inputs'])
                    count[0] += 1
    finally:
        for h in handles:
            h.remove()
    return {k: v / count[0] for k, v in sums.items()}


def npdg_scores(model, data_loader, batches, lam, seed=0, styles='random'):
    """U, B and w per BN layer from source images, as the training hook computes them."""
    from itertools import islice

    from npdg.hooks.sensitivity_statistics_hook import SensitivityStatisticsHook
    hook = SensitivityStatisticsHook(num_images=2, num_styles=4, num_positions=256, lam=lam,
                                     styles=styles, seed=seed)
    scores = hook.score_batches(model, islice(data_loader, batches))
    return {name: {k: v.double() for k, v in s.items()} for name, s in scores.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--config', default='configs/bench/npdg.py')
    parser.add_argument('--batches', type=int, default=30,
                        help='batches of 2 source images for the NPDG statistics')
    parser.add_argument('--lam', type=float, default=0.4)
    parser.add_argument('--styles', default='random', choices=['random', 'adversarial'],
                        help='scoring styles of the statistics (the training hook\'s default: '
                        'random)')
    parser.add_argument('--data-root', default=None,
                        help='root of the synthetic domains (default: the config\'s)')
    parser.add_argument('--out', default=osp.join('benchmarks', 'results', 'unit_shift.json'))
    args = parser.parse_args(argv)
    for key in ('checkpoint', 'out', 'data_root'):  # paths given from the caller's folder
        if getattr(args, key):
            setattr(args, key, osp.abspath(getattr(args, key)))
    os.chdir(ROOT)
    from npdg.apis import experiment
    from npdg.hooks.sensitivity_statistics_hook import observed_layers
    from npdg.utils.model import build_segmentor
    overrides = dict(syn_root=args.data_root) if args.data_root else {}
    if 'warm_start' in experiment.load_config(args.config):
        overrides['warm_start'] = args.checkpoint
    cfg = experiment.load_config(args.config, overrides)
    model = build_segmentor(cfg, args.checkpoint).eval()
    layers = {n: m for n, m in observed_layers(model).items() if hasattr(m, 'running_mean')}
    source = loader(cfg, cfg.syn_gta_val)
    scores = npdg_scores(model, source, args.batches, args.lam, styles=args.styles)
    mu_source = channel_means(model, source, layers)
    shift = None
    for target, dataset in cfg.test_dataloader.dataset.datasets.items():
        mu = channel_means(model, loader(cfg, dataset), layers)
        d = {k: (mu[k] - mu_source[k]).abs() for k in mu}
        shift = d if shift is None else {k: shift[k] + d[k] for k in d}
        print(f'[unit_shift] {target}: done', flush=True)
    shift = {k: v / len(cfg.test_dataloader.dataset.datasets) for k, v in shift.items()}
    names = [n for n in scores if n in shift and len(shift[n]) == len(scores[n]['w'])]
    pooled, per_layer, top_vs_rest = {}, {}, []
    for key in ('unary', 'binary', 'w'):
        pooled[key] = spearman(torch.cat([scores[n][f'{key}_norm' if key != 'w' else 'w']
                                          for n in names]),
                               torch.cat([shift[n] for n in names]))
        per_layer[key] = statistics.median(
            spearman(scores[n][key], shift[n]) for n in names if len(shift[n]) > 2)
    for n in names:
        w, s = scores[n]['w'], shift[n]
        k = max(1, int(round(0.3 * len(w))))
        top = torch.argsort(w, descending=True)[:k]
        mask = torch.zeros(len(w), dtype=torch.bool)
        mask[top] = True
        top_vs_rest.append((float(s[mask].mean()), float(s[~mask].mean())))
    by_stage = {}
    for n in names:
        by_stage.setdefault(stage_of(n), []).append(n)
    stages = {}
    for stage, members in by_stage.items():
        row = {key: spearman(torch.cat([scores[n][f'{key}_norm' if key != 'w' else 'w']
                                        for n in members]),
                             torch.cat([shift[n] for n in members]))
               for key in ('unary', 'binary', 'w')}
        row.update(layers=len(members), channels=int(sum(len(shift[n]) for n in members)),
                   mean_shift=float(torch.cat([shift[n] for n in members]).mean()))
        stages[stage] = row
        print(f"[unit_shift] {stage:18s} {row['channels']:5d} ch  Spearman U {row['unary']:+.3f}"
              f"  B {row['binary']:+.3f}  w {row['w']:+.3f}  mean shift {row['mean_shift']:.3f}",
              flush=True)
    result = dict(
        checkpoint=args.checkpoint, config=args.config, layers=len(names),
        spearman_by_stage=stages,
        channels=int(sum(len(shift[n]) for n in names)),
        spearman_pooled=pooled, spearman_median_over_layers=per_layer,
        shift_top30_w=statistics.mean(t for t, _ in top_vs_rest),
        shift_rest=statistics.mean(r for _, r in top_vs_rest),
        note='shift = |mean target response - mean source response| in running-std units, '
             'averaged over the 3 targets; U/B/w from source images only (AdvStyle, K=4, '
             f'{args.styles} styles)')
    print(json.dumps(result, indent=1))
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
