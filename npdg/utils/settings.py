"""Config settings that stay settings: late-bound references and key checks.

mmengine resolves a config's top-level variables when it reads the file:
``ratio=prune_ratio`` inside a hook dict copies the number, so a later
``--cfg-options prune_ratio=0.5`` (or a child config that sets
``prune_ratio = 0.5``) changes the variable and the dumped config but not what
runs. npdg's configs therefore write a documented setting where it is used as
a *reference*, ``ratio='${prune_ratio}'``, and :func:`resolve_settings`
replaces every reference by the top-level value after all inheritance and
overrides are merged (npdg's tools, and ``Runner.from_cfg`` once npdg is
imported, see :mod:`npdg.compat`). A reference inside a longer string is
substituted as text: ``'${syn_root}/gta'``.

:func:`check_overrides` and :func:`check_top_level_keys` turn the remaining
silent cases into errors: a ``--cfg-options`` override of a top-level name
that nothing reads, and top-level keys that are near-misses of the keys
mmengine's Runner reads (``custom_hook`` for ``custom_hooks``) or MMSeg 0.x
keys that MMSeg 1.x ignores (``lr_config``, ``resume_from``, ...).
"""
import copy
import difflib
import re

REFERENCE = re.compile(r'\$\{(\w+)\}')
RESOLVED_KEY = '_npdg_settings_resolved'

# Top-level keys mmengine's Runner (``Runner.from_cfg``) and mmseg's tools read.
RUNNER_KEYS = frozenset({
    'auto_scale_lr', 'cfg', 'compile', 'custom_hooks', 'custom_imports', 'data_preprocessor',
    'default_hooks', 'default_scope', 'dist_params', 'env_cfg', 'experiment_name', 'launcher',
    'load_from', 'log_level', 'log_processor', 'model', 'model_wrapper_cfg', 'optim_wrapper',
    'param_scheduler', 'randomness', 'resume', 'runner_type', 'strategy', 'test_cfg',
    'test_dataloader', 'test_evaluator', 'train_cfg', 'train_dataloader', 'tta_model',
    'tta_pipeline', 'val_cfg', 'val_dataloader', 'val_evaluator', 'vis_backends', 'visualizer',
    'work_dir', 'find_unused_parameters',
})
# Top-level options npdg's own code reads (npdg.utils.resume.RESUME_OPTIONS).
NPDG_KEYS = frozenset({'resume_settings', 'resume_damaged'})
# Common config variables that are close to a Runner key on purpose.
COMMON_VARIABLES = frozenset({'train_pipeline', 'test_pipeline', 'val_pipeline', 'models'})
# MMSeg 0.x keys that MMSeg 1.x / mmengine silently ignore.
LEGACY_KEYS = {
    'resume_from': 'resume=True and load_from=PATH',
    'runner': 'train_cfg (e.g. dict(type="IterBasedTrainLoop", max_iters=...))',
    'lr_config': 'param_scheduler',
    'optimizer_config': 'optim_wrapper',
    'checkpoint_config': 'default_hooks.checkpoint',
    'log_config': 'default_hooks.logger',
    'evaluation': 'val_evaluator and train_cfg.val_interval',
    'data': 'train_dataloader / val_dataloader / test_dataloader',
    'workflow': 'train_cfg',
}


class SettingsError(KeyError):
    """A config key that would be silently ignored, or a dangling reference."""

    def __str__(self):
        return str(self.args[0]) if self.args else ''


def _path(prefix, key):
    """Join a dotted config path."""
    return f'{prefix}.{key}' if prefix else str(key)


def _resolve_node(node, cfg, path, used):
    """Return ``node`` with every ``${name}`` replaced; record what was used."""
    if isinstance(node, str):
        match = REFERENCE.fullmatch(node)
        names = [match.group(1)] if match else REFERENCE.findall(node)
        for name in names:
            if name not in cfg:
                close = difflib.get_close_matches(name, list(cfg.keys()), n=1)
                hint = f' Did you mean ${{{close[0]}}}?' if close else ''
                raise SettingsError(
                    f'Config key {path!r} refers to the setting ${{{name}}}, but the config '
                    f'has no top-level {name!r}. Define `{name} = ...` at the top of the '
                    f'config (or fix the reference).{hint}')
            used.setdefault(name, []).append(path)
        if match:
            return _resolve_node(copy.deepcopy(cfg[match.group(1)]), cfg, path, used)
        return REFERENCE.sub(lambda m: str(cfg[m.group(1)]), node)
    if isinstance(node, dict):
        for key in list(node.keys()):
            node[key] = _resolve_node(node[key], cfg, _path(path, key), used)
        return node
    if isinstance(node, (list, tuple)):
        items = [_resolve_node(v, cfg, _path(path, i), used) for i, v in enumerate(node)]
        return type(node)(items)
    return node


def find_references(cfg):
    """Map each referenced setting to the config paths that use it.

    Args:
        cfg (mmengine.Config | dict): A config, resolved or not.

    Returns:
        dict[str, list[str]]: ``{setting: [path, ...]}``.
    """
    used = {}
    for key, value in cfg.items():
        _resolve_node(copy.deepcopy(value), cfg, key, used)
    return used


def resolve_settings(cfg):
    """Replace every ``'${name}'`` in ``cfg`` by the top-level value ``cfg[name]``.

    Idempotent; the settings that were referenced are remembered (in
    ``cfg['_npdg_settings_resolved']``, a plain ``{name: [paths]}`` dict) so
    that later checks still know what reads them.

    Args:
        cfg (mmengine.Config): The merged config; changed in place.

    Returns:
        dict[str, list[str]]: ``{setting: [paths that use it]}``.

    Raises:
        SettingsError: If a reference names a top-level key that does not exist.
    """
    used = dict(cfg.get(RESOLVED_KEY, None) or {})
    for key in list(cfg.keys()):
        if key == RESOLVED_KEY:
            continue
        cfg[key] = _resolve_node(cfg[key], cfg, key, used)
    if used:
        cfg[RESOLVED_KEY] = {k: list(v) for k, v in used.items()}
    return used


def config_settings(cfg):
    """The referenced settings of a resolved config with the values that ran.

    Args:
        cfg (mmengine.Config | None): A config passed through
            :func:`resolve_settings`.

    Returns:
        dict: ``{setting: value}`` (plain data), empty if nothing was referenced.
    """
    if cfg is None:
        return {}
    names = cfg.get(RESOLVED_KEY, None) or {}
    return {name: _plain(cfg.get(name)) for name in sorted(names)}


def _plain(value):
    """ConfigDicts and tuples as plain dicts and lists (JSON-ready)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _paths_with_value(node, value, path='', found=None):
    """Config paths whose value equals ``value`` (where a variable was copied)."""
    found = [] if found is None else found
    if isinstance(node, dict):
        if path and _same(node, value):
            found.append(path)
            return found
        for key, item in node.items():
            _paths_with_value(item, value, _path(path, key), found)
    elif isinstance(node, (list, tuple)):
        if path and _same(node, value):
            found.append(path)
        for i, item in enumerate(node):
            _paths_with_value(item, value, _path(path, i), found)
    elif path and _same(node, value):
        found.append(path)
    return found


def _same(a, b):
    """Equality that treats lists and tuples alike and never raises."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return type(a) is type(b) and a == b
    except Exception:  # noqa: BLE001 - arrays and the like
        return False


def readable_keys(cfg, read_keys=()):
    """Top-level keys of ``cfg`` that something reads (so overriding them works).

    Args:
        cfg (mmengine.Config): A config as read from its file.
        read_keys (Iterable[str]): More keys the caller reads itself.

    Returns:
        set[str]: Runner keys, npdg's options, referenced settings and ``read_keys``.
    """
    return set(RUNNER_KEYS) | set(NPDG_KEYS) | set(find_references(cfg)) | set(read_keys)


def split_overrides(configs, cfg_options, read_keys=()):
    """Share one set of overrides among several configs (arms of a comparison).

    Each override goes to the configs that read its top-level name (e.g.
    ``prune_ratio`` to the pruned arms only, ``max_iters`` to all); one that no
    config reads is an error, as for a single config.

    Args:
        configs (dict[str, str]): ``{name: config path}``.
        cfg_options (dict | None): The overrides.
        read_keys (Iterable[str]): Keys the caller reads itself.

    Returns:
        dict[str, dict]: ``{name: the overrides for that config}``.

    Raises:
        SettingsError: If an override is read by none of the configs.
    """
    from mmengine.config import Config
    parsed = {name: Config.fromfile(path) for name, path in configs.items()}
    readable = {name: readable_keys(cfg, read_keys) for name, cfg in parsed.items()}
    out = {name: {} for name in configs}
    for option, value in (cfg_options or {}).items():
        takers = [n for n in configs if option.split('.')[0] in readable[n]]
        if not takers:
            check_overrides(next(iter(parsed.values())), {option: value}, read_keys)
        for name in takers:
            out[name][option] = value
    return out


def check_overrides(cfg, cfg_options, read_keys=()):
    """Refuse ``--cfg-options`` overrides of top-level names that nothing reads.

    Call before merging the overrides into ``cfg``.

    Args:
        cfg (mmengine.Config): The config as read from the file (not yet merged).
        cfg_options (dict): ``--cfg-options`` (``{dotted key: value}``).
        read_keys (Iterable[str]): More top-level keys that something reads.

    Raises:
        SettingsError: Naming the key, what it may have meant, and where the
            config copied its value at parse time.
    """
    if not cfg_options:
        return
    readable = readable_keys(cfg, read_keys)
    for option in cfg_options:
        key = option.split('.')[0]
        _check_not_through_reference(cfg, option)
        if key in readable:
            continue
        msg = f'--cfg-options {option}: nothing reads the top-level name {key!r}'
        if key in cfg:
            copies = _paths_with_value(
                {k: v for k, v in cfg.items() if k != key and k != RESOLVED_KEY}, cfg[key])
            shown = repr(cfg[key])
            shown = shown if len(shown) <= 60 else shown[:57] + '...'
            msg += (f'. The config defines `{key} = {shown}` as a plain variable, '
                    'which was copied where it is used when the file was read, so '
                    'overriding it changes nothing that runs')
            if copies:
                shown = ', '.join(copies[:6]) + (' ...' if len(copies) > 6 else '')
                msg += f'. Override the places that use it instead: {shown}'
        else:
            msg += ', and the config does not define it'
        close = difflib.get_close_matches(key, sorted(readable), n=3, cutoff=0.6)
        if close:
            msg += f'. Did you mean: {", ".join(close)}?'
        else:
            msg += '.'
        raise SettingsError(msg)


def _check_not_through_reference(cfg, option):
    """Refuse ``custom_hooks.4.ratio`` when ``custom_hooks.4`` is ``'${pruning_hook}'``."""
    node, parts = cfg, option.split('.')
    for depth, part in enumerate(parts[:-1]):
        try:
            node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            return
        match = REFERENCE.fullmatch(node) if isinstance(node, str) else None
        if match:
            rest = '.'.join(parts[depth + 1:])
            raise SettingsError(
                f'--cfg-options {option}: {".".join(parts[:depth + 1])} is the reference '
                f'{node!r}; override {match.group(1)}.{rest} instead.')


def check_top_level_keys(cfg, source='the config'):
    """Refuse top-level keys that look like a misspelt or MMSeg 0.x Runner key.

    mmengine ignores unknown top-level keys, so ``custom_hook = [...]`` (for
    ``custom_hooks``) trains the plain baseline and exits 0.

    Args:
        cfg (mmengine.Config): The config.
        source (str): Where the config came from, for the message.

    Raises:
        SettingsError: Naming the key and the key it probably meant.
    """
    for key in cfg.keys():
        if key in RUNNER_KEYS or key in NPDG_KEYS or key in COMMON_VARIABLES or \
                key.startswith('_'):
            continue
        if key in LEGACY_KEYS:
            raise SettingsError(
                f'{source} sets the MMSeg 0.x key {key!r}, which MMSeg 1.x ignores: '
                f'use {LEGACY_KEYS[key]} instead.')
        close = difflib.get_close_matches(key, sorted(RUNNER_KEYS), n=1, cutoff=0.8)
        if close:
            raise SettingsError(
                f'{source} sets the top-level key {key!r}, which nothing reads; did you '
                f'mean {close[0]!r}? (mmengine ignores unknown keys, so the run would '
                'silently go without it.)')
