"""One prepared GPU check: the real recipe end to end, its overhead, pruned speed, memory.

On a GPU machine (CUDA torch, no package index, no OpenMMLab stack), from the
project root::

    bash ../shared/gpu/fetch_wheels.sh              # here, before: writes .whl/
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \\
        --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
    python3 benchmarks/gpu_check.py --out $OUT/gpu_check.json    # < 8 minutes on one GPU

and on a CPU, as the test suite does so that the script cannot rot::

    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu_check.json

It writes one JSON (default ``benchmarks/results/gpu_check_<device>.json``):

(a) ``recipe``: the DeepLabV3+ R50 NPDG recipe (``configs/npdg/deeplab_gta_advstyle.py``:
    AdvStyle, since DSP's weights cannot be fetched there; random init, no
    ImageNet weights) on the synthetic domains, converted like the real data,
    at its real crop (512x512, batch 2) for ``--iters`` iterations with a prune
    step at 60 % of them, through ``tools/train.py``; then ``tools/test.py`` on
    the pruned checkpoint (per-target mIoU, GFLOPs): the CUDA path end to end.
(b) ``overhead``: s/iteration of that run (sparse phase, before the prune, and
    after it) vs the unpruned source-only recipe
    (``configs/baselines/deeplabv3plus_r50-d8_gta.py``) for as many iterations.
(c) ``pruned_speed``: latency of unpruned vs 30 %-pruned DeepLabV3+ R50, MiT-b0
    and MiT-b5 at 512x1024, batch 1 and 8, float32 and float16.
(d) peak GPU memory of (a) and (b) (mmengine's ``memory``: max allocated MiB).

``--quick`` shrinks everything to a smoke run (tiny data, 64x64 crops, 6
iterations, small test images, MiT-b0 only at 64x128).
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

NPDG_CONFIG = 'configs/npdg/deeplab_gta_advstyle.py'
SOURCE_CONFIG = 'configs/baselines/deeplabv3plus_r50-d8_gta.py'
QUICK_DATA = dict(gta=12, cityscapes=dict(train=0, val=2), bdd100k=dict(train=0, val=2),
                  mapillary=dict(training=0, validation=2))


def log(msg):
    """Progress on stdout."""
    print(f'[gpu_check {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def prepare_data(root, quick):
    """The synthetic domains, converted with the real converters."""
    from npdg.apis.synthetic_data import prepare_synthetic_domains
    kwargs = dict(num_images=QUICK_DATA) if quick else {}
    prepare_synthetic_domains(root, seed=0, nproc=1 if quick else min(8, os.cpu_count() or 1),
                              **kwargs)
    return root


def run_config(config, data_root, work_dir, iters, quick, prune=True):
    """The real recipe for ``iters`` iterations on the synthetic domains, prune at 60 %."""
    from npdg.apis import experiment
    return experiment.recipe_run_config(
        config, data_root, work_dir, iters, prune_at=max(2, int(0.6 * iters)) if prune else None,
        small=quick)


def run_tool(args, env=None, timeout=3600):
    """Run a tool of the project; fail with its last output."""
    proc = subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(args[:2])} failed:\n{proc.stderr[-3000:]}')
    return proc


def scalars(work_dir):
    """The per-iteration scalars mmengine wrote (``vis_data/scalars.json``)."""
    rows = []
    for dirpath, _, files in os.walk(work_dir):
        if 'scalars.json' in files and dirpath.endswith('vis_data'):
            with open(osp.join(dirpath, 'scalars.json')) as f:
                rows += [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if 'iter' in r and 'time' in r]


def iteration_stats(rows, begin, end):
    """Median s/iteration and peak memory over iterations ``(begin, end]``.

    ``s_per_iter`` is mmengine's ``time`` (data loading included);
    ``compute_s_per_iter`` leaves the data loading (``data_time``) out.
    """
    sel = [r for r in rows if begin < r['iter'] <= end]
    mem = [r['memory'] for r in sel if 'memory' in r]
    median = lambda values: statistics.median(values) if sel else None  # noqa: E731
    return dict(iters=len(sel), s_per_iter=median([r['time'] for r in sel]),
                compute_s_per_iter=median([r['time'] - r.get('data_time', 0) for r in sel]),
                peak_memory_mib=max(mem) if mem else None)


def train_and_test(work, data_root, iters, quick):
    """(a) and the NPDG half of (b) and (d)."""
    cfg = run_config(NPDG_CONFIG, data_root, osp.join(work, 'npdg'), iters, quick)
    log(f'(a) tools/train.py {NPDG_CONFIG}: {iters} iterations')
    start = time.time()
    run_tool(['tools/train.py', cfg, '--work-dir', osp.join(work, 'npdg')])
    train_s = time.time() - start
    ckpt = osp.join(work, 'npdg', f'iter_{iters}.pth')
    report_path = osp.join(work, 'npdg', 'pruning', 'pruning_report.json')
    pruning = None
    if osp.isfile(report_path):  # the steps without their per-layer detail
        pruning = [{k: v for k, v in step.items() if k != 'layers'}
                   for step in json.load(open(report_path))['steps']]
    log('(a) tools/test.py on the pruned checkpoint')
    proc = run_tool(['tools/test.py', cfg, ckpt, '--work-dir', osp.join(work, 'npdg_test')])
    metrics = {}
    for dirpath, _, files in os.walk(osp.join(work, 'npdg_test')):
        for name in files:
            if name.endswith('.json') and not dirpath.endswith('vis_data'):
                metrics.update(json.load(open(osp.join(dirpath, name))))
    rows = scalars(osp.join(work, 'npdg'))
    step = max(2, int(0.6 * iters))
    return dict(config=NPDG_CONFIG, iters=iters, train_seconds=round(train_s, 1),
                checkpoint_mib=round(osp.getsize(ckpt) / 2**20, 1),
                metrics=metrics, pruning=pruning,
                test_log_tail=proc.stdout[-600:],
                sparse_phase=iteration_stats(rows, 1, step),
                after_prune=iteration_stats(rows, step, iters))


def source_only(work, data_root, iters, quick):
    """The unpruned source-only half of (b) and (d)."""
    cfg = run_config(SOURCE_CONFIG, data_root, osp.join(work, 'source'), iters, quick,
                     prune=False)
    log(f'(b) tools/train.py {SOURCE_CONFIG}: {iters} iterations')
    run_tool(['tools/train.py', cfg, '--work-dir', osp.join(work, 'source')])
    return dict(config=SOURCE_CONFIG, **iteration_stats(scalars(osp.join(work, 'source')),
                                                        1, iters))


def pruned_speed_rows(device, quick):
    """(c): unpruned vs pruned latency per model, batch size and precision."""
    import torch

    from benchmarks import pruned_speed
    models = ['segformer_b0'] if quick else ['deeplabv3plus_r50', 'segformer_b0',
                                             'segformer_b5']
    shape = (64, 128) if quick else (512, 1024)
    batches = (1, 2) if quick else (1, 8)
    dtypes = ('fp32', ) if device == 'cpu' else ('fp32', 'fp16')
    rows = []
    for name in models:
        for batch in batches:
            for dtype in dtypes:
                row = pruned_speed.bench(name, shape, repeats=2 if quick else 10,
                                         warmup=1 if quick else 3, device=device,
                                         importance='L1Importance', round_to=None, ratio=0.3,
                                         batch=batch, dtype=dtype)
                row.pop('latency_all', None)
                rows.append(row)
                log(f"(c) {name} batch {batch} {dtype}: latency x{row['latency_ratio']:.3f} "
                    f"at FLOPs x{row['flops_ratio']:.3f}")
        if device == 'cuda':
            torch.cuda.empty_cache()
    return rows


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda')
    parser.add_argument('--quick', action='store_true', help='smoke run (tests, CPU)')
    parser.add_argument('--iters', type=int, default=None,
                        help='iterations of (a) and (b) (default 100; quick 6)')
    parser.add_argument('--work-dir', default=None,
                        help='scratch folder (default work_dirs/gpu_check[_quick])')
    parser.add_argument('--parts', nargs='+', default=['recipe', 'overhead', 'pruned_speed'],
                        choices=['recipe', 'overhead', 'pruned_speed'])
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('no CUDA device: run on a GPU machine, or --device cpu --quick')
    iters = args.iters or (6 if args.quick else 100)
    work = osp.abspath(args.work_dir or osp.join(
        ROOT, 'work_dirs', 'gpu_check_quick' if args.quick else 'gpu_check'))
    out = args.out or osp.join(ROOT, 'benchmarks', 'results', f'gpu_check_{args.device}.json')
    result = dict(device=args.device, quick=args.quick, torch=torch.__version__,
                  gpu=torch.cuda.get_device_name(0) if args.device == 'cuda' else None,
                  started=time.strftime('%Y-%m-%d %H:%M:%S'))
    start = time.time()
    if {'recipe', 'overhead'} & set(args.parts):
        data_root = osp.join(work, 'data', 'synthetic')
        log(f'synthetic domains -> {data_root}')
        prepare_data(data_root, args.quick)
        result['recipe'] = train_and_test(work, data_root, iters, args.quick)
        if 'overhead' in args.parts:
            base = source_only(work, data_root, iters, args.quick)
            npdg_run = result['recipe']
            result['overhead'] = dict(
                source_only=base, npdg_sparse_phase=npdg_run['sparse_phase'],
                npdg_after_prune=npdg_run['after_prune'],
                sparse_phase_over_source=(npdg_run['sparse_phase']['s_per_iter']
                                          / base['s_per_iter']) if base['s_per_iter'] else None,
                compute_over_source=(npdg_run['sparse_phase']['compute_s_per_iter']
                                     / base['compute_s_per_iter'])
                if base['compute_s_per_iter'] else None)
    if 'pruned_speed' in args.parts:
        result['pruned_speed'] = pruned_speed_rows(args.device, args.quick)
    result['seconds'] = round(time.time() - start, 1)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(result, f, indent=1, default=str)
    log(f'saved {out} ({result["seconds"]} s)')
    return copy.deepcopy(result)


if __name__ == '__main__':
    main()
