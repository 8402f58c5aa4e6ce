"""Deploy speed: PyTorch and onnxruntime latency of unpruned and pruned models.

    python benchmarks/deploy_speed.py [--models demo deeplabv3plus_r50 segformer_b0]
        [--shape 512 1024] [--repeats 5] [--demo-checkpoints R30.pth FLOPS50.pth]
        [--quick] [--out FILE]

For each model, three variants are built: the unpruned model, NPDG's ratio
budget (30 % of the units) and its FLOPs target (half the inference GFLOPs).
``demo`` is the CPU benchmark's DeepLabV3+ R18 (``configs/bench/npdg.py``);
with ``--demo-checkpoints`` its pruned variants are the structures NPDG really
chose in ``tools/compare.py`` runs (``npdg_r30``, ``npdg_flops50``); otherwise,
and for R50 / MiT-b0 (random init, no trained model here), the structure is
chosen by L1 magnitude with the same budgets (only the structure matters for
speed). Every variant is exported with :mod:`npdg.deploy` (static shape) and
checked for parity on one input; then the six timings of a model (torch and
onnxruntime x three variants) are interleaved in one process, so machine
noise hits all alike; medians are reported. Both runtimes use the same number
of threads. Saved to ``benchmarks/results/deploy_speed.{json,md}``; the check
is ``onnxruntime latency ratio / FLOPs ratio <= 1.10``.
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
import torch  # noqa: E402

import npdg  # noqa: E402,F401
from benchmarks import pruned_speed  # noqa: E402
from npdg import deploy  # noqa: E402
from npdg.analysis.complexity import segmentor_complexity  # noqa: E402
from npdg.pruning.pruner import UnitPruner  # noqa: E402
from npdg.pruning.structure import load_pruned_checkpoint  # noqa: E402

#: The benchmark's demo model, and two of pruned_speed's models.
MODELS = dict(demo=('configs/bench/npdg.py', {}),
              **{k: pruned_speed.MODELS[k] for k in ('deeplabv3plus_r50', 'segformer_b0')})
#: The budgets of the NPDG configs: a ratio of the units and a FLOPs target.
RATIO, FLOPS_TARGET = 0.3, 0.5
#: The pass mark: onnxruntime latency ratio within 1.10x of the FLOPs ratio.
LIMIT = 1.10


def build(name):
    """The unpruned model (random init, eval, per-head attention for MiT)."""
    return pruned_speed.build(name, MODELS)


def l1_pruned(base, flops_shape):
    """The two budgets' structures chosen by L1 magnitude (copies of ``base``)."""
    pruner = UnitPruner(dict(type='L1Importance'), threshold=None, trace_shape=(3, 128, 128))
    _, units = pruner.units(base)
    ratio = copy.deepcopy(base)
    pruner.step(ratio, int(RATIO * sum(u.num_units for u in units)))
    gflops = lambda m: segmentor_complexity(m, flops_shape)['gflops']  # noqa: E731
    budget, _ = pruner.budget_for_flops(base, FLOPS_TARGET * gflops(base), gflops)
    target = copy.deepcopy(base)
    pruner.step(target, budget)
    return dict(r30=ratio.eval(), flops50=target.eval())


def checkpoint_pruned(base, paths):
    """The structures (and weights) of real pruned checkpoints."""
    out = {}
    for key, path in zip(('r30', 'flops50'), paths):
        if not osp.isfile(path):
            raise FileNotFoundError(f'--demo-checkpoints: {path!r} does not exist.')
        model = copy.deepcopy(base)
        load_pruned_checkpoint(model, path, strict=True)
        out[key] = model.eval()
    return out


def timed(fn):
    """Seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(name, shape, repeats, warmup, threads, checkpoints=None, workdir=None):
    """One model's row: GFLOPs, parity and latency of every variant and runtime."""
    base = build(name)
    full = (3, *shape)
    flops_shape = (3, 128, 256) if name == 'demo' else (3, 256, 512)
    variants = dict(base=base)
    if checkpoints:
        variants.update(checkpoint_pruned(base, checkpoints))
        structure = 'npdg checkpoints'
    else:
        variants.update(l1_pruned(base, flops_shape))
        structure = 'L1 (random init)'
    x = torch.randn(1, *full)
    runs, info = {}, {}
    for key, model in variants.items():
        path = osp.join(workdir, f'{name}_{key}.onnx')
        deploy.export_onnx(model, path, shape)
        session = deploy.onnx_session(path, threads=threads)
        parity = deploy.check_parity(model, path, x, session=session)
        wrapper = deploy.SegmentorLogits(model).eval()
        feed = {'input': x.numpy()}

        def run_torch(w=wrapper):
            with torch.no_grad():
                w(x)

        runs[f'torch_{key}'] = run_torch
        runs[f'onnxruntime_{key}'] = lambda s=session: s.run(None, feed)
        cx = segmentor_complexity(model, full)
        info[key] = dict(gflops=cx['gflops'], params_m=cx['params'] / 1e6,
                         onnx_mib=osp.getsize(path) / 2**20,
                         parity_max_abs_diff=parity['max_abs_diff'],
                         parity_argmax_agreement=parity['argmax_agreement'])
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            times[key].append(timed(fn))
    lat = {k: statistics.median(v) for k, v in times.items()}
    row = dict(model=name, input=f'1x3x{shape[0]}x{shape[1]}', threads=threads,
               structure=structure, variants={}, times=times)
    for key in variants:
        v = dict(info[key], torch_s=lat[f'torch_{key}'], onnxruntime_s=lat[f'onnxruntime_{key}'])
        if key != 'base':
            v['flops_ratio'] = v['gflops'] / info['base']['gflops']
            v['torch_ratio'] = v['torch_s'] / lat['torch_base']
            v['onnxruntime_ratio'] = v['onnxruntime_s'] / lat['onnxruntime_base']
            v['onnxruntime_over_flops'] = v['onnxruntime_ratio'] / v['flops_ratio']
            v['ok'] = v['onnxruntime_over_flops'] <= LIMIT
        row['variants'][key] = v
    return row


def markdown(rows):
    """The table of docs/results.md (Deploy speed)."""
    lines = ['| model | variant | GFLOPs | params (M) | torch (ms) | onnxruntime (ms) | '
             'FLOPs ratio | torch ratio | onnxruntime ratio | ort / FLOPs |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for row in rows:
        for key, v in row['variants'].items():
            ratios = ('', '', '', '') if key == 'base' else (
                f"{v['flops_ratio']:.3f}", f"{v['torch_ratio']:.3f}",
                f"{v['onnxruntime_ratio']:.3f}",
                f"{v['onnxruntime_over_flops']:.2f}{'' if v['ok'] else ' (over 1.10)'}")
            lines.append(f"| {row['model']} {row['input']} | {key} | {v['gflops']:.2f} | "
                         f"{v['params_m']:.2f} | {v['torch_s'] * 1e3:.0f} | "
                         f"{v['onnxruntime_s'] * 1e3:.0f} | " + ' | '.join(ratios) + ' |')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 1024])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--demo-checkpoints', nargs=2, metavar=('R30', 'FLOPS50'),
                        help='pruned checkpoints of configs/bench/npdg.py (compare runs)')
    parser.add_argument('--quick', action='store_true',
                        help='a smoke run: demo only, 64x128, 1 repeat (for tests)')
    parser.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results',
                                                  'deploy_speed.json'))
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.shape, args.repeats, args.warmup = ['demo'], [64, 128], 1, 0
    threads = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            ckpts = args.demo_checkpoints if name == 'demo' else None
            row = bench(name, args.shape, args.repeats, args.warmup, threads, ckpts, workdir)
            rows.append(row)
            for key, v in row['variants'].items():
                extra = '' if key == 'base' else (
                    f" | ratios FLOPs {v['flops_ratio']:.3f} torch {v['torch_ratio']:.3f} "
                    f"onnxruntime {v['onnxruntime_ratio']:.3f} (ort/FLOPs "
                    f"{v['onnxruntime_over_flops']:.2f}{'' if v['ok'] else ', over 1.10'})")
                print(f"{name:18s} {key:8s} {v['gflops']:7.2f} GFLOPs  torch "
                      f"{v['torch_s'] * 1e3:7.1f} ms  onnxruntime {v['onnxruntime_s'] * 1e3:7.1f}"
                      f" ms{extra}", flush=True)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(args=vars(args), torch=torch.__version__,
                       onnxruntime=__import__('onnxruntime').__version__,
                       rows=rows), f, indent=1)
    with open(osp.splitext(args.out)[0] + '.md', 'w') as f:
        f.write(markdown(rows))
    print(f'saved {args.out}')
    return rows


if __name__ == '__main__':
    main()
