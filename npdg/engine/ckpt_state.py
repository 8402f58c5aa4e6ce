"""One place in a checkpoint for everything npdg adds: ``meta['npdg'][name]``.

Every npdg hook keeps its resumable state under its own name in
``checkpoint['meta']['npdg']`` (mmengine keeps ``meta`` through save, load
and ``--resume``). Checkpoints written before this layout kept five keys
in three places; :func:`get` still reads them, so old checkpoints resume
and reload unchanged:

=============  ==========================================  ==============================
name           written by                                  before (still read)
=============  ==========================================  ==============================
``structure``  PrunedCheckpointHook, ``add_structure``      ``meta['npdg_structure']``
``settings``   PrunedCheckpointHook                        ``meta['npdg_settings']``
``pruning``    UnitPruningHook                             ``meta['npdg_pruning']``
``adasap``     AdaSAPHook                                  ``meta['npdg_adasap']``
``statistics`` SensitivityStatisticsHook                   ``checkpoint['npdg_sensitivity']``
``rng_state``  RngStateHook                                ``checkpoint['npdg_rng_state']``
=============  ==========================================  ==============================
"""
from collections.abc import Mapping

NAMESPACE = 'npdg'

# name -> (where, key) of the layout before the namespace ('meta' or 'top' level)
LEGACY = dict(structure=('meta', 'npdg_structure'), settings=('meta', 'npdg_settings'),
              pruning=('meta', 'npdg_pruning'), adasap=('meta', 'npdg_adasap'),
              statistics=('top', 'npdg_sensitivity'), rng_state=('top', 'npdg_rng_state'))


def _check(name):
    if name not in LEGACY:
        raise KeyError(f'npdg checkpoint state {name!r} is not one of {sorted(LEGACY)}; '
                       'add it to npdg.engine.ckpt_state.LEGACY (with None as its old key).')


def put(checkpoint, name, value):
    """Store ``value`` as ``checkpoint['meta']['npdg'][name]``.

    Args:
        checkpoint (dict): The checkpoint being saved.
        name (str): One of :data:`LEGACY`'s names.
        value: Plain data (tensors allowed).
    """
    _check(name)
    meta = checkpoint.setdefault('meta', {})
    meta.setdefault(NAMESPACE, {})[name] = value


def get(checkpoint, name, default=None):
    """The state ``name`` of a checkpoint, from the namespace or the old layout.

    Args:
        checkpoint (Mapping): A loaded checkpoint.
        name (str): One of :data:`LEGACY`'s names.
        default: Returned when the checkpoint has no such state.

    Returns:
        The stored value, or ``default``.
    """
    _check(name)
    if not isinstance(checkpoint, Mapping):
        return default
    meta = checkpoint.get('meta')
    meta = meta if isinstance(meta, Mapping) else {}
    space = meta.get(NAMESPACE)
    if isinstance(space, Mapping) and name in space:
        return space[name]
    where, key = LEGACY[name]
    holder = meta if where == 'meta' else checkpoint
    return holder.get(key, default)


def pop(checkpoint, name):
    """Remove ``name`` from a checkpoint (both layouts); returns what was there or None."""
    value = get(checkpoint, name)
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), Mapping) else {}
    if isinstance(meta.get(NAMESPACE), dict):
        meta[NAMESPACE].pop(name, None)
    where, key = LEGACY[name]
    (meta if where == 'meta' else checkpoint).pop(key, None)
    return value


def resumed(runner, checkpoint, name):
    """A hook's state when the run resumes from ``checkpoint``; None when it does not.

    ``load_from`` without ``resume`` (fine-tuning from a checkpoint) starts
    the hooks afresh.

    Args:
        runner (Runner): The runner.
        checkpoint (dict): The loaded checkpoint.
        name (str): The state's name.

    Returns:
        object | None: The state, or None.
    """
    if not getattr(runner, '_resume', False):
        return None
    return get(checkpoint, name)
