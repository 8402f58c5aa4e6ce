"""Config loading shared by the command-line tools."""
import os
import os.path as osp

from mmengine.config import Config, DictAction

from .settings import check_overrides, check_top_level_keys, resolve_settings


def add_common_args(parser):
    """Add the options every mmseg-style runner tool takes.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.

    Returns:
        argparse.ArgumentParser: The same parser.
    """
    parser.add_argument('--work-dir', help='directory for logs, metrics and checkpoints')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. train_cfg.max_iters=100 '
        'model.backbone.init_cfg=None (lists: key="[a,b]", no spaces)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def load_config(config, cfg_options=None, work_dir=None, launcher='none', read_keys=()):
    """Read a config file, apply overrides and settle its work dir.

    Settings written as references (``ratio='${prune_ratio}'``) are resolved
    after the overrides are merged (:mod:`npdg.utils.settings`), so
    ``--cfg-options prune_ratio=0.5`` changes what runs; an override of a
    top-level name that nothing reads, and a top-level key that looks like a
    misspelt Runner key, are errors.

    Args:
        config (str): Path of the config file.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        work_dir (str, optional): ``--work-dir``; wins over the file's value.
        launcher (str): Job launcher name.
        read_keys (Iterable[str]): Top-level keys the caller reads itself
            (so overriding them is not an error).

    Returns:
        mmengine.Config: The merged config.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'Config file {config!r} does not exist.')
    os.environ.setdefault('LOCAL_RANK', '0')
    cfg = Config.fromfile(config)
    check_top_level_keys(cfg, source=config)
    if cfg_options:
        check_overrides(cfg, cfg_options, read_keys)
        cfg.merge_from_dict(cfg_options)
    resolve_settings(cfg)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    use_cpu_backend(cfg)
    return cfg


def use_cpu_backend(cfg):
    """Set up distributed runs for machines without CUDA: gloo, CPU DDP.

    Args:
        cfg (mmengine.Config): The config; changed in place.
    """
    import torch
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
    # mmengine passes device_ids=[LOCAL_RANK] to DDP, which CPU modules refuse.
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or dict(type='MMDistributedDataParallel'))
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    # torch's SyncBatchNorm only works on GPU modules: use per-process BN.
    if _replace_norm(cfg.model, 'SyncBN', 'BN'):
        print(f'[npdg] no CUDA: SyncBN replaced by BN for this {cfg.launcher} run '
              '(batch statistics are per process)')


def _replace_norm(node, old, new):
    """Replace ``type=old`` by ``type=new`` in every norm config under ``node``.

    Args:
        node: Config node (dict/list), changed in place.
        old (str): Norm type to replace.
        new (str): Replacement.

    Returns:
        bool: Whether anything was replaced.
    """
    changed = False
    if isinstance(node, dict):
        if node.get('type') == old:
            node['type'] = new
            changed = True
        for value in node.values():
            changed |= _replace_norm(value, old, new)
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed |= _replace_norm(value, old, new)
    return changed


def ensure_hook(cfg, hook_type, **kwargs):
    """Append ``dict(type=hook_type, **kwargs)`` to ``custom_hooks`` unless present.

    Args:
        cfg (mmengine.Config): The config; changed in place.
        hook_type (str): Registered hook name.
        **kwargs: Arguments of the added hook.

    Returns:
        list[dict]: The hook configs of that type (existing or added).
    """
    hooks = list(cfg.get('custom_hooks', None) or [])
    found = [h for h in hooks if h.get('type') in (hook_type, f'mmseg.{hook_type}')]
    if not found:
        hooks.append(dict(type=hook_type, **kwargs))
        found = hooks[-1:]
    cfg.custom_hooks = hooks
    return found


def check_eval_datasets(cfg):
    """Build the val and test datasets once, so bad data fails at start-up.

    A training run validates on held-out source data and is tested on the
    targets afterwards; unconverted or missing target labels would otherwise
    show up only when the run is over. Building a ``MultiTargetDataset``
    checks that every target has samples and that every label file exists.

    Args:
        cfg (mmengine.Config): The resolved config.

    Raises:
        FileNotFoundError | ValueError: Naming the dataset and the fix.
    """
    import copy

    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    for key in ('val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader or not loader.get('dataset'):
            continue
        scope = cfg.get('default_scope', 'mmseg')
        with DefaultScope.overwrite_default_scope(scope):
            try:
                DATASETS.build(copy.deepcopy(loader['dataset']))
            except (FileNotFoundError, ValueError) as err:
                raise type(err)(f'{key}.dataset: {err}') from err
