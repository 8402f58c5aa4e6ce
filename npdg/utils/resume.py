"""Resuming a run: from which file, whether it is intact, and what it can still change.

**Which file.** :func:`find_resume_checkpoint` resumes a work dir from its own
files. ``last_checkpoint`` holds a name relative to the work dir
(:func:`write_last_checkpoint`, called after every save), so a moved or copied
work dir resumes from its own checkpoints; an absolute name pointing outside
the work dir (written by older npdg or plain mmengine, e.g. in a copied work
dir) is not followed silently: the work dir's own file of that name, else its
newest ``iter_N.pth``, is used and the reason logged, and without any own
checkpoint it is an error that names ``--resume PATH``. npdg's
``tools/train.py`` and mmengine's auto-resume (``find_latest_checkpoint``,
wrapped in :mod:`npdg.compat`) both go through it.

**Whether it is intact.** :func:`resolve_resume` reads the chosen checkpoint
before the run starts. A damaged one (truncated, unreadable) falls back to
the newest intact checkpoint of the work dir with a warning naming both, or,
with ``resume_damaged='error'`` in the config, stops naming the file and the
``--resume PATH`` to use. Temporary files of an interrupted save are removed.

**What it can still change.** Each checkpoint carries the settings that ran
(:func:`settings_record`: every custom hook's effective arguments, the config's
named settings and the run's history, under ``meta['npdg']['settings']``;
checkpoints written before fall back to the config text mmengine stores in
them). On resume, :func:`resume_changes` compares them with the new run's over
one table, :data:`FROZEN`: per hook type, the phase after which its arguments'
effect is fixed (a prune step that is done, a sparse phase that is over).
A changed argument whose phase is over at the checkpoint's iteration cannot
take effect as set: by default :class:`ResumeSettingsError` names the setting,
the checkpoint's value, the new one and how to proceed; with
``resume_settings='warn'`` the run goes on with a warning. Anything else (a
later prune step, more iterations, another validation interval) is free.
Each run writes ``settings_ran.json`` into its work dir: segment by segment
(one per resume), what ran and what a resume changed.
"""
import copy
import inspect
import json
import os
import os.path as osp
import re

from mmengine.logging import print_log

from .checkpoint_io import (
    TEMP_MARK,
    DamagedCheckpointError,
    UntrustedCheckpointError,
    atomic_write,
    load_from_local,
)
from .settings import RESOLVED_KEY, config_settings

SETTINGS_KEY = 'npdg_settings'
RECORD_FILE = 'settings_ran.json'
LAST_CHECKPOINT = 'last_checkpoint'
CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')
# Config options of a resume (top-level keys), first value the default.
RESUME_OPTIONS = dict(resume_settings=('error', 'warn'), resume_damaged=('fallback', 'error'))

# Per hook type: when its arguments' effect is fixed, and which arguments stay
# free. ``until``: 'prune' (once a prune step of the hook is done) or the name
# of the hook's argument that ends its phase (None there: the run's last prune
# step). UnitPruningHook's ``prune_iters`` is compared by :func:`_schedule`.
FROZEN = {
    'UnitPruningHook': dict(until='prune', free=('priority', 'prune_iters')),
    'SensitivityStatisticsHook': dict(until='end', phase='statistics collection',
                                      free=('priority', )),
    'SensitivitySparsityHook': dict(until='end', phase='sparse phase',
                                    free=('priority', 'log_interval', 'threshold')),
    'AdaSAPHook': dict(until='uniform_after', phase='adaptive-radius phase',
                       free=('priority', 'rho', 'free_radius')),
}
PRUNING_HOOK = 'UnitPruningHook'
_MISSING = '<not set>'


class ResumeSettingsError(ValueError):
    """A resumed run changes settings whose effect its checkpoint already fixed."""


def resume_option(cfg, key):
    """A resume option of the config (``resume_settings``, ``resume_damaged``), checked.

    Args:
        cfg (mmengine.Config | dict | None): The config.
        key (str): The option.

    Returns:
        str: Its value (the default when unset).
    """
    choices = RESUME_OPTIONS[key]
    value = choices[0] if cfg is None else (cfg.get(key, None) or choices[0])
    if value not in choices:
        raise ValueError(f'{key} must be one of {choices}, got {value!r}.')
    return value


# ------------------------------------------------------------------ which file
def own_checkpoints(work_dir):
    """The work dir's checkpoints (``iter_N.pth``, ``epoch_N.pth``), newest N first.

    Args:
        work_dir (str): The folder.

    Returns:
        list[str]: Paths.
    """
    try:
        names = os.listdir(work_dir)
    except OSError:
        return []
    found = []
    for name in names:
        match = CHECKPOINT_NAME.match(name)
        if match and osp.isfile(osp.join(work_dir, name)):
            found.append((int(match.group(1)), name))
    return [osp.join(work_dir, name) for _, name in sorted(found, reverse=True)]


def _inside(path, folder):
    real, root = osp.realpath(path), osp.realpath(folder)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def find_resume_checkpoint(work_dir):
    """The checkpoint a resume of ``work_dir`` continues from.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        tuple[str | None, str | None]: The path (None: nothing to resume) and
        a note saying why it is not the file ``last_checkpoint`` names (None
        when it is).

    Raises:
        FileNotFoundError: If ``last_checkpoint`` names a file outside the
            work dir (or a missing one) and the work dir has no checkpoint.
    """
    save_file = osp.join(work_dir, LAST_CHECKPOINT)
    named = None
    if osp.isfile(save_file):
        with open(save_file) as f:
            named = f.read().strip() or None
    own = own_checkpoints(work_dir)
    if named is None:
        if own:
            return own[0], (f'[npdg] {save_file} is missing or empty; resuming from the '
                            f'newest checkpoint in the work dir, {own[0]}.')
        return None, None
    if '://' in named:
        return named, None  # a remote out_dir: as mmengine does
    path = named if osp.isabs(named) else osp.join(work_dir, named)
    if _inside(path, work_dir):
        if osp.isfile(path):
            return path, None
        if own:
            return own[0], (f'[npdg] {save_file} names {named}, which does not exist; '
                            f'resuming from the newest checkpoint in the work dir, {own[0]}.')
        raise FileNotFoundError(f'{save_file} names {named}, which does not exist, and '
                                f'{work_dir} holds no other checkpoint to resume from.')
    mine = osp.join(work_dir, osp.basename(path))
    if osp.isfile(mine) or own:
        chosen = mine if osp.isfile(mine) else own[0]
        return chosen, (
            f'[npdg] {save_file} names {path}, which is outside this work dir (copied or '
            f'moved from another run?); resuming from this work dir\'s own {chosen} instead. '
            f'To resume from the other file, pass --resume {path}.')
    if osp.isfile(path) and osp.basename(osp.dirname(path)) == \
            osp.basename(osp.normpath(work_dir)):
        # CheckpointHook(out_dir=...) saves into <out_dir>/<work dir name>/
        return path, None
    raise FileNotFoundError(
        f'{save_file} names {path}, which is outside this work dir, and the work dir has no '
        'checkpoint of its own. npdg does not resume from another run\'s files unasked: '
        f'pass --resume {path} to resume from it.')


def write_last_checkpoint(work_dir, path):
    """Write ``last_checkpoint``: relative to the work dir when the file is inside it.

    Args:
        work_dir (str): The run's work dir.
        path (str): The checkpoint just saved.
    """
    if path is None:
        return
    name = str(path)
    if '://' not in name and _inside(name, work_dir):
        name = osp.relpath(osp.realpath(name), osp.realpath(work_dir))
    with atomic_write(osp.join(work_dir, LAST_CHECKPOINT), 'w') as f:
        f.write(name)


def absolute_checkpoint(work_dir, named):
    """What a ``last_checkpoint`` entry names, as mmengine's loaders need it.

    Args:
        work_dir (str): The work dir.
        named (str | None): The entry.

    Returns:
        str | None: An absolute path (or the URI, or None).
    """
    if named is None or '://' in named or osp.isabs(named):
        return named
    return osp.join(work_dir, named)


def remove_stale_temps(folder):
    """Remove temporary files of saves whose process is gone (a kill mid-save).

    Args:
        folder (str): The work dir.

    Returns:
        list[str]: The removed names.
    """
    removed = []
    pattern = re.compile(re.escape(TEMP_MARK) + r'(\d+)$')
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = pattern.search(name)
        if not match or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        try:
            os.remove(osp.join(folder, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _read(path):
    return load_from_local(path, map_location='cpu', mmap=True)


def newest_intact(work_dir, exclude=()):
    """The newest checkpoint of the work dir that loads.

    Args:
        work_dir (str): The folder.
        exclude (Iterable[str]): Paths not to consider.

    Returns:
        tuple[str | None, dict | None]: Path and checkpoint, or (None, None).
    """
    skip = {osp.realpath(p) for p in exclude}
    for path in own_checkpoints(work_dir):
        if osp.realpath(path) in skip:
            continue
        try:
            return path, _read(path)
        except (DamagedCheckpointError, UntrustedCheckpointError):
            continue
    return None, None


def resolve_resume(work_dir, explicit=None, on_damaged='fallback'):
    """Choose, check and read the checkpoint a resume continues from.

    Args:
        work_dir (str): The run's work dir.
        explicit (str, optional): ``--resume PATH``; None: the work dir's latest.
        on_damaged (str): ``'fallback'`` (a damaged latest checkpoint gives way
            to the newest intact one) or ``'error'``.

    Returns:
        tuple[str | None, dict | None, list[str]]: Path (None: nothing to
        resume), the checkpoint (None for remote files) and notes to log.

    Raises:
        DamagedCheckpointError: If the checkpoint cannot be read and no
            fall-back applies; the message names it and ``--resume PATH``.
    """
    notes = []
    removed = remove_stale_temps(work_dir)
    if removed:
        notes.append(f'[npdg] removed {len(removed)} temporary file(s) of an interrupted '
                     f'save from {work_dir}: {", ".join(sorted(removed))}.')
    if explicit is not None:
        if '://' in str(explicit):
            return explicit, None, notes
        try:
            return explicit, _read(explicit), notes
        except DamagedCheckpointError as error:
            intact, _ = newest_intact(osp.dirname(osp.abspath(explicit)), [explicit])
            raise error.instead(intact) from error
    path, note = find_resume_checkpoint(work_dir)
    if note:
        notes.append(note)
    if path is None or '://' in path:
        return path, None, notes
    try:
        return path, _read(path), notes
    except DamagedCheckpointError as error:
        intact, checkpoint = newest_intact(work_dir, [path])
        if on_damaged == 'error' or intact is None:
            raise error.instead(intact, "resume_damaged='error'" if intact else None) \
                from error
        notes.append(f'[npdg] checkpoint {path!r} is damaged or incomplete and cannot be read '
                     f'(torch said: "{error.reason}"); resuming from {intact}, the newest '
                     f'intact checkpoint in {work_dir} (resume_damaged=\'fallback\'; set '
                     'resume_damaged=\'error\' to stop instead).')
        return intact, checkpoint, notes


# ------------------------------------------------------------------ what ran
def _plain(value):
    """Config values as plain data (dicts, lists, scalars, strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _canon(value):
    """A comparable text of a value (1 == 1.0, tuples == lists)."""
    def norm(v):
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return repr(v)
    return json.dumps(norm(_plain(value)), sort_keys=True)


def _hook_type(hook):
    kind = hook.get('type')
    if isinstance(kind, str):
        return kind.split('.')[-1]
    return getattr(kind, '__name__', str(kind))


def effective_args(hook):
    """A hook config's arguments with the class defaults filled in.

    Args:
        hook (dict): ``dict(type=..., **args)``.

    Returns:
        dict: Plain ``{argument: value}``.
    """
    args = {}
    kind = hook.get('type')
    try:
        if isinstance(kind, str):
            from mmseg.registry import HOOKS
            kind = HOOKS.get(kind)
        params = inspect.signature(kind.__init__).parameters.values() if kind else ()
    except (TypeError, ValueError, KeyError):
        params = ()
    for param in params:
        if param.name != 'self' and param.default is not param.empty and \
                param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            args[param.name] = _plain(param.default)
    args.update({k: _plain(v) for k, v in hook.items() if k != 'type'})
    return args


def hooks_of(cfg):
    """The config's custom hooks by key (type, ``#2`` for a second of a type).

    Args:
        cfg (mmengine.Config | dict): A resolved config.

    Returns:
        dict[str, tuple[int, dict]]: ``{key: (index in custom_hooks, arguments)}``.
    """
    out, seen = {}, {}
    for index, hook in enumerate(cfg.get('custom_hooks', None) or []):
        if not isinstance(hook, dict) or 'type' not in hook:
            continue
        kind = _hook_type(hook)
        seen[kind] = seen.get(kind, 0) + 1
        key = kind if seen[kind] == 1 else f'{kind}#{seen[kind]}'
        out[key] = (index, effective_args(hook))
    return out


def settings_record(cfg, history=None):
    """What a run runs with: hook arguments, named settings and its history.

    Args:
        cfg (mmengine.Config): The run's resolved config.
        history (list[dict], optional): Segments so far (one per resume).

    Returns:
        dict: Plain data for ``checkpoint['meta']['npdg']['settings']``.
    """
    return dict(version=1, hooks={key: args for key, (_, args) in hooks_of(cfg).items()},
                settings=_plain(config_settings(cfg)),
                history=copy.deepcopy(history) if history else
                [dict(from_iter=0, to_iter=0, resumed_from=None)])


def checkpoint_record(checkpoint):
    """The settings a checkpoint ran with (its record, else its config text).

    Args:
        checkpoint (dict): A loaded checkpoint.

    Returns:
        dict | None: A :func:`settings_record`, or None if it carries neither.
    """
    from npdg.engine import ckpt_state
    meta = checkpoint.get('meta') or {}
    record = ckpt_state.get(checkpoint, 'settings')
    if isinstance(record, dict) and 'hooks' in record:
        return record
    text = meta.get('cfg')
    if not isinstance(text, str):
        return None
    try:
        from mmengine.config import Config
        cfg = Config.fromstring(text, file_format='.py')
    except Exception:  # noqa: BLE001 - an unreadable config text: nothing to compare
        return None
    record = settings_record(cfg)
    record['history'] = [dict(from_iter=0, to_iter=meta.get('iter'), resumed_from=None,
                              note='from the config mmengine stored in the checkpoint')]
    return record


def _setting_for(used, path, depth=0):
    """The named setting (``'${name}'``) a config path was resolved from, if any."""
    direct = sorted(name for name, paths in used.items() if path in paths)
    if direct or depth > 8:
        return direct[0] if direct else None
    for name, paths in used.items():
        for prefix in paths:
            if path.startswith(prefix + '.'):
                found = _setting_for(used, name + path[len(prefix):], depth + 1)
                if found:
                    return found
    return None


def _label(cfg, index, key, arg):
    used = cfg.get(RESOLVED_KEY, None) or {}
    setting = _setting_for(used, f'custom_hooks.{index}.{arg}') if index is not None else None
    return f'{setting} ({key}.{arg})' if setting else f'{key}.{arg}'


def _last_prune(hooks):
    iters = (hooks.get(PRUNING_HOOK) or {}).get('prune_iters') or []
    iters = iters if isinstance(iters, list) else [iters]
    return max(int(i) for i in iters) if iters else None


def _schedule(iters, at):
    """The part of a prune schedule a checkpoint at iteration ``at`` fixed."""
    iters = sorted(int(i) for i in (iters if isinstance(iters, list) else [iters]))
    done = [i for i in iters if i <= at]
    return dict(done=done, steps=len(iters) if done else None)


def _remaining(new_hooks, at):
    iters = (new_hooks.get(PRUNING_HOOK) or (None, {}))[1].get('prune_iters') or []
    iters = iters if isinstance(iters, list) else [iters]
    return [int(i) for i in iters if int(i) > at]


def _steps_text(done):
    if len(done) == 1:
        return f'the prune step at iteration {done[0]} is done'
    return f'the prune steps at iterations {done} are done'


def _fixed_by(kind, args, old_hooks, at):
    """Why ``kind``'s arguments are fixed at iteration ``at`` (None: they are not).

    Returns:
        tuple[int, str, str] | None: (since, why, phase kind).
    """
    rule = FROZEN.get(kind)
    if rule is None:
        return None
    if rule['until'] == 'prune':
        done = _schedule(args.get('prune_iters') or [], at)['done']
        return (done[0], _steps_text(done), 'prune') if done else None
    end = args.get(rule['until'])
    end = _last_prune(old_hooks) if end is None else int(end)
    if end is None or at < end:
        return None
    return end, f'the {rule["phase"]} ended at iteration {end}', 'phase'


def resume_changes(record, at, cfg):
    """Compare a checkpoint's settings with a resumed run's.

    Args:
        record (dict): The checkpoint's :func:`settings_record`.
        at (int): The checkpoint's iteration.
        cfg (mmengine.Config): The resumed run's resolved config.

    Returns:
        list[dict]: One entry per changed setting: ``label``, ``checkpoint``,
        ``this_run``, ``fixed`` (its effect is already fixed: cannot take
        effect as set) and ``effect`` (what the change does).
    """
    old_hooks, new_hooks = record.get('hooks') or {}, hooks_of(cfg)
    changes, seen = [], set()
    for key, old_args in old_hooks.items():
        kind = key.split('#')[0]
        if key not in new_hooks:
            fixed = _fixed_by(kind, old_args, old_hooks, at)
            changes.append(dict(label=key, checkpoint='present', this_run='absent',
                                fixed=False, effect='this run goes on without it'
                                + (f' ({fixed[1]})' if fixed else '')))
            continue
        index, new_args = new_hooks[key]
        fixed = _fixed_by(kind, old_args, old_hooks, at)
        rule = FROZEN.get(kind, {})
        for arg in sorted(set(old_args) | set(new_args)):
            old, new = old_args.get(arg, _MISSING), new_args.get(arg, _MISSING)
            if kind == PRUNING_HOOK and arg == 'prune_iters':
                entry = _schedule_change(old, new, at)
            elif _canon(old) == _canon(new):
                continue
            elif _MISSING in (old, new):
                entry = dict(fixed=False, effect='an argument of another npdg version (not '
                             'in both runs), so not compared')
            elif fixed is None or arg in rule.get('free', ()):
                entry = dict(fixed=False, effect=f'takes effect from iteration {at}')
            elif fixed[2] == 'prune':
                remaining = _remaining(new_hooks, at)
                entry = dict(fixed=True, since=fixed[0], effect=(
                    f'{fixed[1]}; only the prune steps still to come ({remaining}) would use '
                    f'{new!r}, so the run would mix both values' if remaining else
                    f'{fixed[1]} and no prune step is left, so {new!r} would change nothing: '
                    f'the model keeps the structure {old!r} made'))
            else:
                entry = dict(fixed=True, since=fixed[0],
                             effect=f'{fixed[1]}, so {new!r} would change nothing')
            if entry is None:
                continue
            label = _label(cfg, index, key, arg)
            seen.add(label.split(' (')[0])
            changes.append(dict(label=label, checkpoint=old, this_run=new, **entry))
    for key, (index, _) in new_hooks.items():
        if key not in old_hooks:
            changes.append(dict(label=key, checkpoint='absent', this_run='present',
                                fixed=False, effect=f'takes effect from iteration {at}'))
    old_settings = record.get('settings') or {}
    for name, new in _plain(config_settings(cfg)).items():
        old = old_settings.get(name, _MISSING)
        if name in seen or _canon(old) == _canon(new) or _is_hook(new) or _is_hook(old):
            continue
        changes.append(dict(label=name, checkpoint=old, this_run=new, fixed=False,
                            effect='npdg does not check this one: whether it takes effect '
                            'after a resume is up to what reads it'))
    return changes


def _is_hook(value):
    return isinstance(value, dict) and str(value.get('type', '')).endswith('Hook')


def _schedule_change(old, new, at):
    """The entry for a changed ``prune_iters`` (None: nothing fixed changed)."""
    if _canon(old) == _canon(new):
        return None
    before, after = _schedule(old, at), _schedule(new, at)
    if before == after:
        return dict(fixed=False, effect=f'the prune steps after iteration {at} follow it')
    if before['done'] != after['done']:
        never = [i for i in after['done'] if i not in before['done']]
        why = (f'steps at or before the checkpoint\'s iteration {at} cannot change: the '
               f'checkpoint did {before["done"] or "none"}')
        if never:
            why += f', and a step at {never} would never run'
    else:
        why = (f'{_steps_text(before["done"])}, and each step removed its share of the budget '
               f'for a schedule of {before["steps"]} step(s), so another number of steps '
               'would not give the schedule the list describes')
    return dict(fixed=True, since=(before['done'] or [at])[0], effect=why)


def _describe(change):
    return (f'{change["label"]}: the checkpoint ran {change["checkpoint"]!r}, this run sets '
            f'{change["this_run"]!r}. Fixed since iteration {change["since"]}: '
            f'{change["effect"]}.')


def check_resume_settings(cfg, checkpoint, source, mode='error', work_dir=None, log=True):
    """Compare a resumed run's settings with its checkpoint's; refuse or warn.

    Args:
        cfg (mmengine.Config): The resumed run's resolved config.
        checkpoint (dict): The loaded checkpoint.
        source (str): Where it came from (for the messages).
        mode (str): ``'error'`` or ``'warn'`` (``resume_settings``).
        work_dir (str, optional): The run's work dir (for the messages).
        log (bool): Log the warning (``'warn'``) and the free changes.

    Returns:
        tuple[list[dict], dict]: The changes (:func:`resume_changes`) and the
        resumed run's settings record (its history continued).

    Raises:
        ResumeSettingsError: In ``'error'`` mode, if a setting whose effect
            the checkpoint fixed was changed.
    """
    meta = checkpoint.get('meta') or {}
    at = meta.get('iter')
    record = checkpoint_record(checkpoint)
    if record is None or at is None:
        history = [dict(from_iter=0, to_iter=at, resumed_from=None,
                        note='the checkpoint carries no settings to compare')]
        changes = []
    else:
        changes = resume_changes(record, int(at), cfg)
        history = [dict(h) for h in record.get('history') or []
                   if h.get('from_iter') is None or h['from_iter'] < at] or \
            [dict(from_iter=0, resumed_from=None)]
        history[-1]['to_iter'] = at
    fixed = [c for c in changes if c['fixed']]
    where = work_dir or cfg.get('work_dir', '.')
    if fixed and mode == 'error':
        raise ResumeSettingsError(
            f'Resuming from {source} (iteration {at}) with settings whose effect that '
            'checkpoint already fixed:\n' + '\n'.join(f'  - {_describe(c)}' for c in fixed)
            + '\nSet them back to the checkpoint\'s values; or train from these weights as a '
            f'new run in another work dir (--cfg-options load_from={source}, without '
            "--resume: a fresh schedule); or continue anyway with resume_settings='warn' "
            '(--cfg-options resume_settings=warn): the run then warns, and '
            f'{osp.join(where, RECORD_FILE)} records what ran.')
    if fixed and log:
        print_log(
            f"[npdg] resume_settings='warn': resuming from {source} (iteration {at}) although "
            'these settings can no longer take effect as set:\n'
            + '\n'.join(f'  - {_describe(c)}' for c in fixed)
            + f'\nWhat ran is recorded in {osp.join(where, RECORD_FILE)}.',
            logger='current', level=30)
    free = [c for c in changes if not c['fixed']]
    if free and log:
        print_log('[npdg] resumed with changed settings: ' + '; '.join(
            f'{c["label"]} {c["checkpoint"]!r} -> {c["this_run"]!r} ({c["effect"]})'
            for c in free), logger='current')
    history.append(dict(
        from_iter=at, to_iter=at, resumed_from=source, resume_settings=mode,
        changed={c['label']: {k: c[k] for k in ('checkpoint', 'this_run', 'fixed', 'effect')}
                 for c in changes}))
    return changes, settings_record(cfg, history)


def write_settings_ran(work_dir, record):
    """Write ``<work_dir>/settings_ran.json`` from a run's settings record.

    Args:
        work_dir (str): The run's work dir.
        record (dict): Its :func:`settings_record`.
    """
    data = dict(
        note='What ran in this work dir, one segment per start or resume. A segment\'s '
        '"changed" lists what its resume changed against the checkpoint; "fixed": the '
        'checkpoint had already fixed its effect, so it could not take effect as set. '
        '"settings" and "hooks": the values of the latest segment.',
        segments=record.get('history', []), settings=record.get('settings', {}),
        hooks=record.get('hooks', {}))
    os.makedirs(work_dir, exist_ok=True)
    with atomic_write(osp.join(work_dir, RECORD_FILE), 'w') as f:
        json.dump(data, f, indent=1, default=repr)


def annotate_dumped_config(path, source, at, changes):
    """Append to the work dir's config which of its settings did not take effect.

    Args:
        path (str): The config mmengine dumped into the work dir.
        source (str): The checkpoint resumed from.
        at (int): Its iteration.
        changes (list[dict]): :func:`resume_changes` output.
    """
    fixed = [c for c in changes if c['fixed']]
    if not fixed or not osp.isfile(path):
        return
    lines = ['', f"# [npdg] Resumed from {source} at iteration {at} with resume_settings='warn'.",
             f'# These settings did NOT take effect as written above ({RECORD_FILE} has the '
             'details):']
    lines += [f'#   {_describe(c)}'.replace('\n', ' ') for c in fixed]
    with open(path) as f:
        text = f.read()
    with atomic_write(path, 'w') as f:
        f.write(text.rstrip('\n') + '\n' + '\n'.join(lines) + '\n')
