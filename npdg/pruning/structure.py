"""The structure of a (pruned) model as plain data, and how to rebuild it.

A structurally pruned model has smaller layers than the model its config
builds: torch-pruning removes conv/BN output channels with every coupled
input (depthwise convs change ``groups``, concatenations shrink), and whole
attention heads are removed from ``PerHeadEfficientAttention``. A checkpoint
of such a model loads only into a model of the same shapes.

``capture_structure`` records, as plain data (ints, floats, strings, lists,
dicts; no tensors), the sizes of every module whose shape can change plus the
shape of every entry of the model's state dict. ``apply_structure`` resizes a
freshly built (unpruned) model in place to those shapes, so that
``load_state_dict(strict=True)`` fills it exactly. ``check_state_dict_matches``
compares a state dict with a model and raises listing every difference,
because mmengine's ``load_checkpoint(strict=False)`` would only log "size
mismatch" and leave those tensors at their initial values.

The structure travels in ``checkpoint['meta']['npdg']['structure']``
(``add_structure`` / ``get_structure``).
"""
import re
from collections import OrderedDict
from collections.abc import Mapping

import torch
import torch.nn as nn

from npdg.engine import ckpt_state  # noqa: E402  (plain dict access, no runner)

from ..analysis.inference_path import unwrap_model as _unwrap

STRUCTURE_KEY = 'npdg_structure'  # the layout before meta['npdg'] (npdg.engine.ckpt_state)
STRUCTURE_VERSION = 1
IGNORED_MISSING_SUFFIXES = ('num_batches_tracked', )
REVISE_KEYS = ((r'^module\.', ''), )

_ATTRIBUTES = {
    'per_head_attention': ('num_heads', 'head_dim', 'embed_dims', 'scale',
                           'attn_impl'),
    'multihead_attention': ('embed_dim', 'kdim', 'vdim', 'num_heads',
                            'head_dim'),
    'conv': ('in_channels', 'out_channels', 'groups'),
    'linear': ('in_features', 'out_features'),
    'group_norm': ('num_groups', 'num_channels'),
    'layer_norm': ('normalized_shape', ),
    'norm': ('num_features', ),
}




def module_kind(module):
    """The kind of a module whose shape pruning can change.

    Args:
        module (nn.Module): Any module.

    Returns:
        str | None: One of the keys of ``_ATTRIBUTES`` (``'conv'``,
        ``'norm'`` for BatchNorm/SyncBN/InstanceNorm, ``'linear'``, ...), or
        None for modules whose shape pruning never changes.
    """
    from npdg.models.per_head_attention import PerHeadEfficientAttention
    if isinstance(module, PerHeadEfficientAttention):
        return 'per_head_attention'
    if isinstance(module, nn.MultiheadAttention):
        return 'multihead_attention'
    if isinstance(module, nn.modules.conv._ConvNd):
        return 'conv'
    if isinstance(module, nn.Linear):
        return 'linear'
    if isinstance(module, nn.GroupNorm):
        return 'group_norm'
    if isinstance(module, nn.LayerNorm):
        return 'layer_norm'
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return 'norm'
    return None


def _plain(value):
    """Turn a module attribute into plain data (tuples become lists)."""
    if isinstance(value, (tuple, list, torch.Size)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(
            value, (int, float, str)):
        return value
    raise TypeError(f'cannot record attribute value {value!r} of type '
                    f'{type(value).__name__} as plain data.')


def _module_record(module, kind):
    """Plain-data record of one module's sizes."""
    record = dict(kind=kind, type=type(module).__name__)
    for attr in _ATTRIBUTES[kind]:
        record[attr] = _plain(getattr(module, attr))
    if kind == 'per_head_attention':
        record['use_gate'] = module.head_gate is not None
    return record


def capture_structure(model):
    """Record the shapes of a (pruned) model as plain data.

    Args:
        model (nn.Module): The model; a (MM)DDP wrapper is unwrapped.

    Returns:
        dict: ``{'version': int, 'modules': {name: record}, 'shapes':
        {state dict key: [int, ...]}}``. Each record holds ``kind``, ``type``
        (class name, for messages) and the kind's size attributes (e.g.
        ``in_channels``/``out_channels``/``groups`` for convs,
        ``num_heads``/``head_dim``/``embed_dims`` for per-head attention).
    """
    model = _unwrap(model)
    modules = OrderedDict()
    for name, module in model.named_modules():
        kind = module_kind(module)
        if kind is not None:
            modules[name] = _module_record(module, kind)
    shapes = OrderedDict((key, list(value.shape))
                         for key, value in model.state_dict().items()
                         if torch.is_tensor(value))
    return dict(version=STRUCTURE_VERSION, modules=dict(modules),
                shapes=dict(shapes))


def _validate_structure(structure):
    """Raise unless ``structure`` looks like ``capture_structure`` output."""
    if not isinstance(structure, Mapping) or not {
            'version', 'modules', 'shapes'} <= set(structure):
        raise ValueError(
            'Not an npdg structure: expected a dict with "version", '
            '"modules" and "shapes" (made by '
            'npdg.pruning.capture_structure).')
    if structure['version'] > STRUCTURE_VERSION:
        raise ValueError(
            f'The structure has version {structure["version"]}, newer than '
            f'this npdg understands ({STRUCTURE_VERSION}); upgrade npdg.')


def _describe(record):
    """Short text of a module record's sizes, e.g. for error messages."""
    sizes = ', '.join(f'{k}={record[k]}' for k in _ATTRIBUTES[record['kind']])
    return f'{record["type"]}({sizes})'


def _convert_if_needed(model, structure):
    """Convert mmseg's packed MiT attention when the structure has per-head.

    Returns:
        int: Number of attention modules converted.
    """
    from npdg.models.convert import convert_mit_attention, is_converted
    records = [r for r in structure['modules'].values()
               if r['kind'] == 'per_head_attention']
    if not records or is_converted(model):
        return 0
    use_gate = any(r.get('use_gate', True) for r in records)
    return convert_mit_attention(model, use_gate=use_gate,
                                 attn_impl=records[0].get('attn_impl', 'sdpa'))


def _check_modules_exist(model, structure):
    """Raise if a recorded module is missing or of another kind."""
    modules = dict(model.named_modules())
    for name, record in structure['modules'].items():
        module = modules.get(name)
        if module is None:
            raise RuntimeError(
                f'The structure records module {name!r} as '
                f'{_describe(record)}, but the model has no module of that '
                'name. Build the model from the checkpoint\'s own config.')
        kind = module_kind(module)
        if kind != record['kind']:
            raise RuntimeError(
                f'The structure records module {name!r} as '
                f'{_describe(record)} (a {record["kind"]}), but the model\'s '
                f'{name!r} is a {type(module).__name__} ({kind}). Build the '
                'model from the checkpoint\'s own config.')


def _tensor_slot(modules, key):
    """Owner module, attribute name and current tensor of a state key."""
    owner_name, _, attr = key.rpartition('.')
    owner = modules.get(owner_name)
    if owner is not None:
        if attr in owner._parameters and owner._parameters[attr] is not None:
            return owner, attr, owner._parameters[attr]
        if attr in owner._buffers and owner._buffers[attr] is not None:
            return owner, attr, owner._buffers[attr]
    return None, attr, None


def _replace_tensor(owner, attr, old, shape):
    """Put a zero tensor of ``shape`` in place of ``owner.<attr>``."""
    new = old.detach().new_zeros(shape)
    if isinstance(old, nn.Parameter):
        owner._parameters[attr] = nn.Parameter(
            new, requires_grad=old.requires_grad)
    else:
        owner._buffers[attr] = new


def _check_resizable(key, shape, old):
    """Raise unless pruning could turn ``old`` into a tensor of ``shape``."""
    if old is None:
        raise RuntimeError(
            f'The structure has tensor {key!r} of shape {list(shape)}, but '
            'the model has no parameter or buffer of that name. Build the '
            'model from the checkpoint\'s own config.')
    if old.dim() != len(shape):
        raise RuntimeError(
            f'Tensor {key!r}: the structure records shape {list(shape)} but '
            f'the model has {list(old.shape)} (a different number of '
            'dimensions, which pruning never causes). Build the model from '
            'the checkpoint\'s own config.')
    if any(new > cur for new, cur in zip(shape, old.shape)):
        raise RuntimeError(
            f'Tensor {key!r}: the structure records shape {list(shape)}, '
            f'larger than the model\'s {list(old.shape)}; pruning only '
            'shrinks, so the checkpoint does not come from this config (e.g. '
            'another number of classes or width). Build the model from the '
            'checkpoint\'s own config.')


def _resize_tensors(model, structure):
    """Resize every parameter/buffer whose shape differs from the record.

    Everything is checked before the first tensor is replaced.

    Returns:
        dict[str, tuple[list, list]]: ``{key: (old shape, new shape)}``.
    """
    modules = dict(model.named_modules())
    plan = []
    for key, shape in structure['shapes'].items():
        owner, attr, old = _tensor_slot(modules, key)
        _check_resizable(key, shape, old)
        if list(old.shape) != list(shape):
            plan.append((key, owner, attr, old, list(shape)))
    resized = {}
    for key, owner, attr, old, shape in plan:
        _replace_tensor(owner, attr, old, shape)
        resized[key] = (list(old.shape), shape)
    return resized


def _set_attributes(module, record):
    """Copy a record's size attributes onto its module."""
    for attr in _ATTRIBUTES[record['kind']]:
        value = record[attr]
        if isinstance(value, list):
            value = tuple(value)
        setattr(module, attr, value)
    if record['kind'] == 'multihead_attention':
        module._qkv_same_embed_dim = (module.kdim == module.embed_dim
                                      and module.vdim == module.embed_dim)


def _expected_weight_shape(module, kind):
    """Leading weight dims implied by a module's attributes (None: skip)."""
    if kind == 'conv':
        if module.transposed:
            return [module.in_channels, module.out_channels // module.groups]
        return [module.out_channels, module.in_channels // module.groups]
    if kind == 'linear':
        return [module.out_features, module.in_features]
    if kind == 'norm' and module.weight is not None:
        return [module.num_features]
    if kind == 'group_norm' and module.weight is not None:
        return [module.num_channels]
    if kind == 'layer_norm' and module.weight is not None:
        return list(module.normalized_shape)
    return None


def _check_consistent(name, module, kind):
    """Raise if a module's attributes disagree with its tensors."""
    if kind == 'per_head_attention':
        module.check_layout()
        return
    expected = _expected_weight_shape(module, kind)
    if expected is None:
        return
    actual = list(module.weight.shape[:len(expected)])
    if actual != expected:
        raise RuntimeError(
            f'Module {name!r} ({type(module).__name__}): its recorded sizes '
            f'imply weight shape {expected}... but the recorded weight is '
            f'{actual}...; the structure is inconsistent (was the model '
            'changed by hand without updating the attributes?).')


def apply_structure(model, structure):
    """Resize a freshly built model in place to a recorded structure.

    Converts mmseg's packed SegFormer attention to
    ``PerHeadEfficientAttention`` first when the structure records per-head
    attention. Parameters/buffers whose shapes differ are replaced by zero
    tensors of the recorded shape (same dtype, device and ``requires_grad``;
    values are meant to be loaded afterwards), and the modules' size
    attributes (``out_channels``, ``groups``, ``num_features``,
    ``num_heads``, ...) are set from the record. Tensors that already have
    the recorded shape are left untouched (same objects).

    Args:
        model (nn.Module): Model built from the (unpruned) config; a
            wrapper's ``.module`` is resized.
        structure (dict): Output of :func:`capture_structure`.

    Returns:
        dict: ``{'converted': int, 'resized': {key: (old shape, new
        shape)}}``; both empty/zero if the model already had the structure.

    Raises:
        RuntimeError: If the structure names a module or tensor the model
            does not have, or of another kind or rank.
    """
    _validate_structure(structure)
    model = _unwrap(model)
    converted = _convert_if_needed(model, structure)
    _check_modules_exist(model, structure)
    resized = _resize_tensors(model, structure)
    modules = dict(model.named_modules())
    for name, record in structure['modules'].items():
        _set_attributes(modules[name], record)
    for name, record in structure['modules'].items():
        _check_consistent(name, modules[name], record['kind'])
    return dict(converted=converted, resized=resized)


def add_structure(checkpoint, model):
    """Store ``model``'s structure in ``checkpoint['meta']``.

    Args:
        checkpoint (dict): A checkpoint dict (modified in place).
        model (nn.Module): The model the checkpoint's weights come from.

    Returns:
        dict: ``checkpoint``.
    """
    if checkpoint.get('meta') is None:
        checkpoint['meta'] = {}
    checkpoint['meta'].pop(STRUCTURE_KEY, None)  # the old layout's copy, if any
    ckpt_state.put(checkpoint, 'structure', capture_structure(model))
    return checkpoint


def get_structure(checkpoint):
    """The structure stored in a checkpoint, if any.

    Args:
        checkpoint (dict): A checkpoint dict.

    Returns:
        dict | None: The structure, or None if the checkpoint carries none.
    """
    structure = ckpt_state.get(checkpoint, 'structure')
    if structure is not None:
        _validate_structure(structure)
    return structure


def checkpoint_state_dict(checkpoint):
    """The state dict of a checkpoint, keys revised as mmengine does.

    Args:
        checkpoint (dict): A checkpoint dict, or a bare state dict.

    Returns:
        OrderedDict: ``checkpoint['state_dict']`` (or ``checkpoint``) with a
        leading ``module.`` stripped from every key.
    """
    state = checkpoint.get('state_dict', checkpoint)
    revised = OrderedDict()
    for key, value in state.items():
        for pattern, repl in REVISE_KEYS:
            key = re.sub(pattern, repl, key)
        revised[key] = value
    return revised


def _unpack_legacy_keys(model, state):
    """Apply ``PerHeadEfficientAttention``'s packed-key unpacking to a copy.

    A converted model loads packed mmseg MiT keys (``attn.in_proj_weight``)
    through its ``_load_from_state_dict``; compare what it will really load.
    """
    from npdg.models.convert import unpack_legacy_attention_keys
    from npdg.models.per_head_attention import PerHeadEfficientAttention
    state = OrderedDict(state)
    for name, module in model.named_modules():
        if isinstance(module, PerHeadEfficientAttention):
            unpack_legacy_attention_keys(state, f'{name}.' if name else '',
                                         module)
    return state


def _shape_of(value):
    """Shape of a tensor-like value as a list (None if it has none)."""
    shape = getattr(value, 'shape', None)
    return None if shape is None else list(shape)


def compare_state_dict(model, state_dict):
    """Differences between a model's state and a state dict.

    Args:
        model (nn.Module): The model (a wrapper is unwrapped).
        state_dict (dict): A state dict or a checkpoint dict.

    Returns:
        dict: ``mismatched`` (list of ``(key, checkpoint shape, model
        shape)``), ``missing`` (model keys the state dict lacks; BN
        ``num_batches_tracked`` ignored, as mmengine does) and
        ``unexpected`` (state dict keys the model lacks).
    """
    model = _unwrap(model)
    state = _unpack_legacy_keys(model, checkpoint_state_dict(state_dict))
    expected = {k: list(v.shape) for k, v in model.state_dict().items()}
    mismatched = [(k, _shape_of(v), expected[k]) for k, v in state.items()
                  if k in expected and _shape_of(v) != expected[k]]
    missing = [k for k in expected if k not in state
               and not k.endswith(IGNORED_MISSING_SUFFIXES)]
    unexpected = [k for k in state if k not in expected]
    return dict(mismatched=mismatched, missing=missing, unexpected=unexpected)


def _mismatch_hint(diff, has_structure):
    """A sentence saying what most likely went wrong."""
    smaller = sum(1 for _, ckpt, mdl in diff['mismatched']
                  if ckpt is not None and len(ckpt) == len(mdl)
                  and all(c <= m for c, m in zip(ckpt, mdl)))
    if diff['mismatched'] and smaller == len(diff['mismatched']):
        if has_structure:
            return ('Every mismatched tensor is smaller in the checkpoint: '
                    'it was pruned, and its structure was not applied to '
                    'the model (use npdg.pruning.apply_structure, the '
                    'PrunedCheckpointHook or npdg.utils.model.'
                    'build_segmentor).')
        return ('Every mismatched tensor is smaller in the checkpoint: it '
                'looks pruned, but it carries no structure '
                "(checkpoint['meta']['npdg']['structure']). Re-save it from "
                'the pruned model with npdg.pruning.add_structure (the '
                'PrunedCheckpointHook does this on every save), or pass the '
                'checkpoint\'s own (pruned) config.')
    return ('The checkpoint does not belong to this model: pass the '
            'checkpoint\'s own config (same backbone depth, widths, heads '
            'and number of classes).')


def _format_mismatch(diff, hint):
    """The error message for ``check_state_dict_matches``."""
    counts = (f'{len(diff["mismatched"])} shape mismatch(es), '
              f'{len(diff["missing"])} missing key(s), '
              f'{len(diff["unexpected"])} unexpected key(s)')
    lines = [f'The checkpoint does not match the model: {counts}.', hint]
    if diff['mismatched']:
        lines.append('Shape mismatches (name: checkpoint shape vs model '
                     'shape):')
        lines += [f'  {k}: {c} vs {m}' for k, c, m in diff['mismatched']]
    if diff['missing']:
        lines.append('Missing in the checkpoint: ' + ', '.join(
            diff['missing']))
    if diff['unexpected']:
        lines.append('Unexpected in the checkpoint: ' + ', '.join(
            diff['unexpected']))
    return '\n'.join(lines)


def check_state_dict_matches(model, state_dict, strict=True,
                             has_structure=None):
    """Raise unless a state dict loads into ``model`` without any mismatch.

    Shape mismatches always raise. Missing/unexpected keys raise when
    ``strict``. Missing BN ``num_batches_tracked`` keys are ignored (mmengine
    ignores them too); mmseg's data preprocessor has no persistent state.
    Packed mmseg MiT attention keys count as the per-head keys a converted
    model turns them into.

    Args:
        model (nn.Module): The model that will load the weights.
        state_dict (dict): A state dict, or a checkpoint dict with a
            ``'state_dict'`` entry; a leading ``module.`` is stripped.
        strict (bool): Whether missing/unexpected keys are errors too.
        has_structure (bool | None): Whether the checkpoint carried a
            structure; only refines the hint in the message.

    Raises:
        RuntimeError: Listing every shape mismatch (name, checkpoint shape,
            model shape) and every missing/unexpected key, with a hint.
    """
    diff = compare_state_dict(model, state_dict)
    keys_bad = strict and (diff['missing'] or diff['unexpected'])
    if diff['mismatched'] or keys_bad:
        raise RuntimeError(
            _format_mismatch(diff, _mismatch_hint(diff, has_structure)))


def fit_model_to_checkpoint(model, checkpoint, strict=True, check_unstructured=True):
    """Resize ``model`` to a checkpoint's structure (if any) and check it matches.

    Args:
        model (nn.Module): The model that will load the weights (changed in place).
        checkpoint (dict): The checkpoint as read.
        strict (bool): Whether missing/unexpected keys are errors (shape
            mismatches always are).
        check_unstructured (bool): Whether to check a checkpoint that carries
            no structure too (False keeps mmengine's lenient loading there).

    Returns:
        dict | None: ``apply_structure``'s change record, or None when the
        checkpoint carries no structure.

    Raises:
        RuntimeError: On any mismatch that remains.
    """
    bare = _unwrap(model)
    structure = get_structure(checkpoint)
    change = apply_structure(bare, structure) if structure is not None else None
    if structure is not None or check_unstructured:
        check_state_dict_matches(bare, checkpoint, strict=strict,
                                 has_structure=structure is not None)
    return change


def load_pruned_checkpoint(model, checkpoint, strict=True,
                           map_location='cpu'):
    """Apply a checkpoint's structure, check it strictly, load its weights.

    Args:
        model (nn.Module): Freshly built model (modified in place).
        checkpoint (str | dict): A checkpoint file or an already read
            checkpoint dict.
        strict (bool): Whether missing/unexpected keys are errors (shape
            mismatches always are).
        map_location (str): Where to load tensors when reading a file.

    Returns:
        dict: The checkpoint dict.
    """
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
    if isinstance(checkpoint, str):
        checkpoint = _load_checkpoint(checkpoint, map_location=map_location)
    bare = _unwrap(model)
    fit_model_to_checkpoint(bare, checkpoint, strict=strict)
    _load_checkpoint_to_model(bare, checkpoint, strict=strict)
    return checkpoint


__all__ = [
    'STRUCTURE_KEY', 'STRUCTURE_VERSION', 'capture_structure',
    'apply_structure', 'add_structure', 'get_structure',
    'check_state_dict_matches', 'compare_state_dict',
    'checkpoint_state_dict', 'fit_model_to_checkpoint', 'load_pruned_checkpoint',
    'module_kind'
]
