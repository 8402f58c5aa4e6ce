"""Train, test and measure one config: the unit of work of the demo."""
import copy
import glob
import hashlib
import json
import os
import os.path as osp

import torch

from npdg.analysis.complexity import segmentor_complexity
from npdg.analysis.latency import segmentor_latency
from npdg.engine.runner import NpdgRunner
from npdg.utils.config import ensure_hook
from npdg.utils.workdir_lock import WorkDirLock

READ_KEYS = ('syn_gta_val', 'syn_pseudo_target_pipeline')  # top-level config keys the demo itself reads


def train(cfg, work_dir, hooks=()):
    """Train ``cfg`` into ``work_dir``; resume if a checkpoint is there.

    Args:
        cfg (Config): Full config.
        work_dir (str): Output folder.
        hooks (Sequence[Hook]): Extra hook instances for this run only (the
            demo's progress line); not part of the config.

    Returns:
        str: Path of the final checkpoint.
    """
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    final = osp.join(work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    if osp.isfile(final):
        return final
    cfg.resume = bool(glob.glob(osp.join(work_dir, 'iter_*.pth')))
    ensure_hook(cfg, 'RNGStateHook')
    ensure_hook(cfg, 'PrunedCheckpointHook')
    with WorkDirLock(work_dir):
        runner = NpdgRunner.from_cfg(cfg)
        for hook in hooks:
            runner.register_hook(hook)
        runner.train()
    return final


def test(cfg, checkpoint, work_dir, dataset=None, targets=None):
    """Evaluate ``checkpoint``; optionally on another multi-target dataset.

    Args:
        cfg (Config): Full config.
        checkpoint (str): Weights to evaluate.
        work_dir (str): Output folder for logs and the metrics JSON.
        dataset (dict, optional): Replacement test dataset config.
        targets (list[str], optional): Target names of that dataset.

    Returns:
        dict: The metrics (per-target mIoU, mean, gflops, params_m, ...).
    """
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.resume = False
    ensure_hook(cfg, 'PrunedCheckpointHook')
    if dataset is not None:
        cfg.test_dataloader.dataset = dataset
        cfg.test_evaluator = dict(cfg.test_evaluator, targets=targets)
    return NpdgRunner.from_cfg(cfg).test()


def measure(cfg, checkpoint, input_shape, repeats=20):
    """FLOPs, parameters and latency of the model in ``checkpoint``.

    Args:
        cfg (Config): Full config.
        checkpoint (str): Weights to load (strictly).
        input_shape (tuple): (C, H, W) for FLOPs and latency.
        repeats (int): Timed repeats for latency.

    Returns:
        dict: ``gflops``, ``params``, ``latency_ms`` (median) and the input size.
    """
    from npdg.utils.model import build_segmentor
    model = build_segmentor(cfg, checkpoint)
    info = segmentor_complexity(model, input_shape=input_shape)
    with torch.no_grad():
        lat = segmentor_latency(model, input_shape=input_shape, warmup=3, repeats=repeats)
    return dict(gflops=info['gflops'], params=info['params'],
                latency_ms=lat['median'] * 1000.0,
                input_shape='x'.join(str(s) for s in input_shape))


def without_validation(cfg):
    """A copy of ``cfg`` that trains without validation loops.

    Args:
        cfg (Config): Full config.

    Returns:
        Config: The copy (tests are run separately).
    """
    cfg = copy.deepcopy(cfg)
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    return cfg


def retarget_data_root(cfg, data_root, default='data/synthetic'):
    """Point every path under ``default`` in ``cfg`` at ``data_root``.

    Args:
        cfg (Config): Config; changed in place.
        data_root (str): New root.
        default (str): Root the config was written for.

    Returns:
        Config: The same config.
    """
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                node[key] = walk(value)
        elif isinstance(node, list):
            return [walk(v) for v in node]
        elif isinstance(node, str) and (node == default or node.startswith(default + '/')):
            return data_root + node[len(default):]  # whole path components only
        return node

    if osp.normpath(data_root) != osp.normpath(default):
        for key in list(cfg.keys()):
            cfg[key] = walk(cfg[key])
    return cfg


def load_config(path, cfg_options=None):
    """Load a config with optional overrides (settings resolved, keys checked).

    Args:
        path (str): Config path.
        cfg_options (dict, optional): Overrides.

    Returns:
        Config: The config.
    """
    from ..utils.config import load_config as load
    return load(path, cfg_options, read_keys=READ_KEYS)


def code_version():
    """A digest of npdg's source code (every ``npdg/**/*.py``) and version.

    Returns:
        str: 16 hex digits; changes whenever any npdg source file changes.
    """
    import npdg
    root = osp.dirname(npdg.__file__)
    digest = hashlib.sha256(npdg.__version__.encode())
    for path in sorted(glob.glob(osp.join(root, '**', '*.py'), recursive=True)):
        digest.update(osp.relpath(path, root).encode())
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def run_key(cfg):
    """Cache key of a run: the resolved config's content plus the code version.

    Args:
        cfg (Config): The resolved config (work dir and launcher are ignored).

    Returns:
        str: 16 hex digits.
    """
    content = {k: v for k, v in cfg.to_dict().items() if k not in ('work_dir', 'launcher')}
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256((text + code_version()).encode()).hexdigest()[:16]


def _set_scales(node, kinds, scale):
    """Set ``scale`` of every transform of a type in ``kinds``, in place."""
    if isinstance(node, dict):
        if node.get('type') in kinds and 'scale' in node:
            node['scale'] = scale
        for value in node.values():
            _set_scales(value, kinds, scale)
    elif isinstance(node, list):
        for value in node:
            _set_scales(value, kinds, scale)


def recipe_run_config(config, data_root, work_dir, iters, prune_at=None, small=False):
    """Dump a short run of a real recipe on the synthetic domains; return its path.

    For checks of the real recipes (``benchmarks/gpu_check.py``, the source
    tests): the config with its ``data/...`` paths pointed at ``data_root``,
    no pretrained weights, no validation, one checkpoint at the end, a log
    line per iteration and, with ``prune_at``, the prune step there (statistics
    refreshed three times before it, once in a ``small`` run). Schedulers longer than the run (a
    warm-up of 1500 iterations) are clipped to it.

    Args:
        config (str): Config file.
        data_root (str): Root of the synthetic domains (replaces ``data``).
        work_dir (str): Folder of the dumped ``config.py`` (created).
        iters (int): Iterations.
        prune_at (int, optional): The one prune step's iteration.
        small (bool): 64x64 crops, frames rescaled to about 128x64, whole-image
            inference, no dataloader workers (a CPU smoke run).

    Returns:
        str: Path of the dumped config.
    """
    opts = dict(max_iters=iters)
    if prune_at is not None:
        # a smoke run refreshes once (each refresh of an R50 costs seconds on a CPU)
        opts.update(prune_iters=[prune_at],
                    stats_interval=prune_at if small else max(1, prune_at // 3),
                    stats_batches=1)
    if small:
        opts.update(crop_size=(64, 64), flops_input=(3, 64, 128), trace_shape=(3, 64, 64))
    cfg = without_validation(retarget_data_root(load_config(config, opts), data_root,
                                                default='data'))
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    cfg.default_hooks.checkpoint.update(interval=iters, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    workers = 0 if small else 4
    for key in ('train_dataloader', 'test_dataloader'):
        cfg[key].update(num_workers=workers, persistent_workers=workers > 0)
    if small:
        _set_scales([cfg.train_dataloader, cfg.test_dataloader], ('Resize', 'RandomResize'),
                    (128, 64))
        cfg.model.test_cfg = dict(mode='whole')
    for sched in cfg.get('param_scheduler') or []:  # a warm-up longer than the run
        end = sched.get('end')
        if isinstance(end, int) and end > iters:
            sched['end'] = end = iters
        if isinstance(end, int) and sched.get('begin', 0) >= end:
            sched['begin'] = end - 1
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    return path
