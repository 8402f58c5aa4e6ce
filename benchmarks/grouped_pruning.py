"""Grouped structural global pruning of SegFormer MiT: FLOPs, params and latency ratios.

    python benchmarks/grouped_pruning.py --models mit_b0 --criteria hessian   # Hessian, 50 / 75 %
    python benchmarks/grouped_pruning.py --models mit_b0 --criteria taylor    # Taylor, 50 / 75 %
    python benchmarks/grouped_pruning.py                                      # b0 and b5, 5 criteria

Riaz & Smeaton (2025; methods.md section 5): every dependency-graph group is a
unit (attention heads, Mix-FFN hidden channels, each stage's embedding width,
the key/value reduction width, the decode head's BN channels), all coupled
weights of a unit are removed together, and the units are ranked *globally*
(each layer's scores divided by their mean) with Hessian (sum w^2 E[g^2] over
per-sample gradients), Taylor, L1, L2 or random importance.

For each model (random init: no pretrained MiT weights here; the structure a
ranking removes is what sets the speed) and each criterion and ratio (share
of all units removed in one step), the pruned copy's GFLOPs and params at
``--flops-shape`` and its median CPU latency at ``--latency-shape`` are
measured beside the unpruned model's (timings interleaved A, B, A, B in one
process). The data criteria see ``--batches`` batches of two synthetic
128x128 images with blocky labels. Saves ``--out``
(benchmarks/results/grouped_pruning.json) and prints the table.
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
import torch  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402

import npdg  # noqa: E402,F401
from benchmarks.pruned_speed import build, timed  # noqa: E402  (random-init models, one timed forward)
from npdg.analysis.complexity import segmentor_complexity  # noqa: E402
from npdg.importance import ScoringBatches, ScoringContext  # noqa: E402
from npdg.pruning.pruner import UnitPruner  # noqa: E402

SCORING_SIZE = 128
MODELS = {  # name: (config, model overrides) -- the recipes' own models
    'mit_b0': ('configs/grouped/segformer_mit-b0_gta.py',
               dict(data_preprocessor=dict(size=(SCORING_SIZE, SCORING_SIZE)))),
    'mit_b5': ('configs/npdg/segformer_gta.py',
               dict(data_preprocessor=dict(size=(SCORING_SIZE, SCORING_SIZE)))),
}
CRITERIA = {
    'hessian': dict(type='HessianImportance', normalizer='mean'),
    'taylor': dict(type='TaylorImportance', normalizer='mean'),
    'l1': dict(type='L1Importance', normalizer='mean'),
    'l2': dict(type='L2Importance', normalizer='mean'),
    'random': dict(type='RandomImportance'),
}
UNIT_TYPES = ('channel', 'head', 'width')


class BlockLabels:
    """Synthetic scoring images: blocky 19-class labels, images that follow them."""

    def __init__(self, length=8, size=SCORING_SIZE):
        self.length, self.size = length, size

    def __len__(self):
        return self.length

    def __getitem__(self, idx):
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        g = torch.Generator().manual_seed(idx)
        s = self.size
        label = torch.randint(0, 19, (1, s // 16, s // 16), generator=g)
        label = label.repeat_interleave(16, 1).repeat_interleave(16, 2)
        img = (label.float() * 12 + torch.rand(3, s, s, generator=g) * 30).clamp(0, 255)
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(dict(img_shape=(s, s), ori_shape=(s, s), pad_shape=(s, s)))
        return dict(inputs=img.to(torch.uint8), data_samples=sample)


def count_by_kind(layers, key):
    """Per unit kind, the sum over a prune step's layer records of ``key(layer)``."""
    out = {k: 0 for k in UNIT_TYPES}
    for layer in layers:
        out[layer['kind']] += key(layer)
    return out


def measure(base, pruned, flops_shape, latency_shape, repeats):
    """GFLOPs/params at ``flops_shape`` and interleaved median latency at ``latency_shape``."""
    info = {k: segmentor_complexity(m, flops_shape) for k, m in (('base', base),
                                                                  ('pruned', pruned))}
    x = torch.rand(1, *latency_shape) * 255
    timed(base, x, 'cpu')
    timed(pruned, x, 'cpu')
    times = dict(base=[], pruned=[])
    for _ in range(repeats):
        times['base'].append(timed(base, x, 'cpu'))
        times['pruned'].append(timed(pruned, x, 'cpu'))
    lat = {k: statistics.median(v) for k, v in times.items()}
    return dict(gflops_base=info['base']['gflops'], gflops_pruned=info['pruned']['gflops'],
                params_base_m=info['base']['params'] / 1e6,
                params_pruned_m=info['pruned']['params'] / 1e6,
                latency_base_ms=lat['base'] * 1e3, latency_pruned_ms=lat['pruned'] * 1e3,
                flops_ratio=info['pruned']['gflops'] / info['base']['gflops'],
                params_ratio=info['pruned']['params'] / info['base']['params'],
                latency_ratio=lat['pruned'] / lat['base'])


def run_model(name, criteria, ratios, args):
    """Every (criterion, ratio) row of one model."""
    base = build(name, MODELS)
    rows = []
    for crit in criteria:
        pruner = UnitPruner(CRITERIA[crit], None, min_keep_ratio=args.min_keep_ratio,
                            trace_shape=(3, SCORING_SIZE, SCORING_SIZE), widths=True)
        _, units = pruner.units(base)
        total = sum(u.num_units for u in units)
        for ratio in ratios:
            model = copy.deepcopy(base)
            context = ScoringContext(model, batches=ScoringBatches(
                BlockLabels(2 * args.batches), pseudo_collate, 2, args.batches, seed=0))
            result = pruner.step(model, int(round(ratio * total)), context=context)
            row = dict(model=name, criterion=crit, ratio=ratio, units_total=total,
                       units_removed=result.removed,
                       removed_by_kind=count_by_kind(result.layers, lambda e: len(e['removed'])),
                       units_by_kind=count_by_kind(result.layers, lambda e: e['units_before']),
                       **measure(base, model.eval(), args.flops_shape, args.latency_shape,
                                 args.repeats))
            rows.append(row)
            print(f"{name:7s} {crit:8s} {ratio:.2f}: removed {result.removed}/{total} units "
                  f"({', '.join(f'{k} {v}' for k, v in row['removed_by_kind'].items())}); "
                  f"GFLOPs {row['gflops_base']:.2f} -> {row['gflops_pruned']:.2f} "
                  f"(x{row['flops_ratio']:.3f}), params x{row['params_ratio']:.3f}, latency "
                  f"{row['latency_base_ms']:.0f} -> {row['latency_pruned_ms']:.0f} ms "
                  f"(x{row['latency_ratio']:.3f})", flush=True)
    return rows


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--criteria', nargs='+', default=list(CRITERIA), choices=list(CRITERIA))
    parser.add_argument('--ratios', nargs='+', type=float, default=[0.5, 0.75])
    parser.add_argument('--flops-shape', nargs=3, type=int, default=[3, 512, 512])
    parser.add_argument('--latency-shape', nargs=3, type=int, default=[3, 512, 512])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--batches', type=int, default=2,
                        help='scoring batches of two images (data criteria)')
    parser.add_argument('--min-keep-ratio', type=float, default=0.1)
    parser.add_argument('--out', default=None,
                        help='default benchmarks/results/grouped_pruning_<models>_<criteria>.json')
    args = parser.parse_args(argv)
    if any(not 0 < r < 1 for r in args.ratios):
        parser.error('--ratios must be in (0, 1)')
    args.flops_shape, args.latency_shape = tuple(args.flops_shape), tuple(args.latency_shape)
    rows = []
    for name in args.models:
        rows += run_model(name, args.criteria, args.ratios, args)
    out = args.out or osp.join(ROOT, 'benchmarks', 'results', 'grouped_pruning_'
                               f"{'-'.join(args.models)}_{'-'.join(args.criteria)}.json")
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(dict(args={k: v for k, v in vars(args).items()},
                       threads=torch.get_num_threads(),
                       note='random-init models; latency on the CPU, interleaved with the '
                            'unpruned model in one process', rows=rows), f, indent=1)
    print(f'saved {out}')
    return rows


if __name__ == '__main__':
    main()
