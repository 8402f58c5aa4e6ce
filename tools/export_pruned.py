"""Export a (pruned) checkpoint: slim checkpoint + config, and/or an ONNX model.

Example:
    python tools/export_pruned.py configs/npdg/segformer_gta.py \\
        work_dirs/segformer_gta/iter_40000.pth --out exported/

writes ``exported/<name>_slim.pth`` (``state_dict`` and ``meta`` only: the
pruned structure ``meta['npdg']['structure']`` and ``dataset_meta``; no
optimizer, schedulers or message hub) and ``exported/<name>_config.py`` (the
config flattened with ``cfg.dump()``; ``custom_imports`` loads npdg,
``custom_hooks`` keeps only ``ModelComplexityHook`` and adds
``PrunedCheckpointHook``, pretrained-weight ``init_cfg`` entries are dropped
since the checkpoint holds every weight). ``<name>`` defaults to
``<config stem>_<checkpoint stem>``. Stock mmseg tools then rebuild and
evaluate the pruned model::

    python $(python -c "import mmseg,os;print(os.path.dirname(mmseg.__file__))")/.mim/tools/test.py \\
        exported/<name>_config.py exported/<name>_slim.pth

``--onnx OUT.onnx [--shape H W] [--dynamic]`` writes the inference path
(backbone, neck, decode head with the per-head attention, logits resized to
the input) as ONNX (:mod:`npdg.deploy`) and checks it on the spot: onnxruntime's
logits on a real image (``--image``, default the first test image of the
config) must match PyTorch's within ``--rtol`` x max(1, max |logit|), or the
tool fails. ``--shape`` defaults to that image's test-time size::

    python tools/export_pruned.py configs/npdg/deeplab_gta.py \\
        work_dirs/deeplab_gta/iter_40000.pth --onnx export/deeplab_gta.onnx --shape 512 1024
"""
import argparse
import copy
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmengine.config import DictAction  # noqa: E402
from mmengine.runner.checkpoint import weights_to_cpu  # noqa: E402

import npdg  # noqa: E402,F401
from npdg.deploy import PARITY_RTOL  # noqa: E402
from npdg.engine import ckpt_state  # noqa: E402
from npdg.pruning.structure import STRUCTURE_KEY, capture_structure, load_pruned_checkpoint  # noqa: E402
from npdg.utils.checkpoint_io import GUARD_KEY, PrunedModelGuard, atomic_write, save_trusted  # noqa: E402
from npdg.utils.config import load_config  # noqa: E402
from npdg.utils.model import build_segmentor  # noqa: E402

KEEP_HOOKS = ('ModelComplexityHook', )
NPDG_IMPORTS = ('npdg', )
# the config text, the structure (re-captured) and the training-time hook state
DROPPED_META = ('cfg', STRUCTURE_KEY, 'npdg_pruning', 'npdg_adasap', ckpt_state.NAMESPACE)


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; defaults to ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(
        description='Export a pruned checkpoint (slim weights + config)')
    parser.add_argument('config', help='the config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='checkpoint (pruned or not)')
    parser.add_argument('--out', help='output directory of the slim checkpoint + config')
    parser.add_argument('--onnx', metavar='OUT.onnx', help='write the model as ONNX')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='ONNX input size (default: the parity image\'s test-time size)')
    parser.add_argument('--dynamic', action='store_true',
                        help='ONNX with dynamic batch, height and width')
    parser.add_argument('--image', help='image for the ONNX parity check '
                        '(default: the first image of the config\'s test set)')
    parser.add_argument('--rtol', type=float, default=PARITY_RTOL,
                        help='ONNX parity tolerance, relative to max(1, max |logit|)')
    parser.add_argument('--name', help='output name stem '
                        '(default: <config stem>_<checkpoint stem>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys before export')
    args = parser.parse_args(argv)
    if not (args.out or args.onnx):
        parser.error('give --out DIR (slim checkpoint + config), --onnx OUT.onnx, or both')
    return args


def _hook_type_name(hook):
    """The type name of a hook config (class or string)."""
    kind = hook.get('type')
    return getattr(kind, '__name__', kind)


def export_hooks(custom_hooks):
    """Keep the inference-side custom hooks and add ``PrunedCheckpointHook``.

    Args:
        custom_hooks (list[dict] | None): The config's ``custom_hooks``.

    Returns:
        list[dict]: The hooks of the exported config.
    """
    hooks = [h for h in (custom_hooks or []) if _hook_type_name(h) in KEEP_HOOKS]
    hooks.append(dict(type='PrunedCheckpointHook', strict=True))
    return hooks


def export_imports(custom_imports):
    """``custom_imports`` that also import npdg and its checkpoint hook.

    Args:
        custom_imports (dict | None): The config's ``custom_imports``.

    Returns:
        dict: The merged ``custom_imports``.
    """
    custom_imports = dict(custom_imports or {})
    imports = list(custom_imports.get('imports', []))
    if isinstance(custom_imports.get('imports'), str):
        imports = [custom_imports['imports']]
    imports += [name for name in NPDG_IMPORTS if name not in imports]
    custom_imports.update(imports=imports, allow_failed_imports=False)
    return custom_imports


def drop_pretrained(node):
    """Remove pretrained-weight references from a model config, in place.

    ``init_cfg=dict(type='Pretrained', ...)`` entries become None and a
    top-level ``pretrained`` key becomes None: the exported checkpoint holds
    every weight, and the URLs may not be reachable.

    Args:
        node (dict | list): A (part of a) model config.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'init_cfg' and isinstance(value, dict) and \
                    value.get('type') == 'Pretrained':
                node[key] = None
            elif key == 'pretrained' and isinstance(value, str):
                node[key] = None
            else:
                drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            drop_pretrained(value)


def export_config(cfg):
    """The config of the exported model (modified copy).

    Args:
        cfg (mmengine.Config): The training config.

    Returns:
        mmengine.Config: The exported config.
    """
    cfg = copy.deepcopy(cfg)
    cfg.custom_imports = export_imports(cfg.get('custom_imports'))
    cfg.custom_hooks = export_hooks(cfg.get('custom_hooks'))
    cfg.load_from = None
    cfg.resume = False
    drop_pretrained(cfg.model)
    return cfg


def slim_checkpoint(model, checkpoint, built_shapes=None):
    """``state_dict`` + ``meta`` (structure, dataset_meta) of a loaded model.

    Args:
        model (nn.Module): The model, loaded from ``checkpoint``.
        checkpoint (dict): The checkpoint as read.
        built_shapes (dict, optional): ``{key: shape}`` of the model as its
            config builds it; when the loaded model differs, the slim
            checkpoint carries the pruned-model guard.

    Returns:
        dict: The slim checkpoint.
    """
    source_meta = checkpoint.get('meta') or {}
    meta = {k: v for k, v in source_meta.items() if k not in DROPPED_META}
    settings = ckpt_state.get(checkpoint, 'settings')
    meta['npdg_version'] = npdg.__version__
    state = weights_to_cpu(model.state_dict())
    slim = dict(meta=meta, state_dict=state)
    ckpt_state.put(slim, 'structure', capture_structure(model))
    if settings is not None:
        ckpt_state.put(slim, 'settings', settings)
    if built_shapes is not None and \
            {k: tuple(v.shape) for k, v in state.items()} != built_shapes:
        slim = {GUARD_KEY: PrunedModelGuard(), **slim}  # first: loaders stop on it
    return slim


def export(config, checkpoint, out_dir, name=None, cfg_options=None):
    """Write ``<name>_slim.pth`` and ``<name>_config.py`` into ``out_dir``.

    Args:
        config (str): Config file the checkpoint belongs to.
        checkpoint (str): Checkpoint file.
        out_dir (str): Output directory (created).
        name (str, optional): Output name stem.
        cfg_options (dict, optional): Config overrides.

    Returns:
        tuple[str, str]: Paths of the slim checkpoint and the config.
    """
    for path in (config, checkpoint):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path!r} does not exist.')
    cfg = load_config(config, cfg_options)
    cfg.pop('launcher', None)
    cfg.pop('work_dir', None)
    model = build_segmentor(cfg)
    built = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ckpt = load_pruned_checkpoint(model, checkpoint, strict=True)
    if name is None:
        name = '_'.join(osp.splitext(osp.basename(p))[0]
                        for p in (config, checkpoint))
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = osp.join(out_dir, f'{name}_slim.pth')
    cfg_path = osp.join(out_dir, f'{name}_config.py')
    # Both written atomically (temporary file, fsync, rename): a kill leaves no half file.
    save_trusted(slim_checkpoint(model, ckpt, built), ckpt_path)
    with atomic_write(cfg_path, 'w') as f:
        f.write(export_config(cfg).pretty_text)
    return ckpt_path, cfg_path


def export_onnx(config, checkpoint, path, shape=None, dynamic=False, image=None,
                rtol=PARITY_RTOL, cfg_options=None):
    """Write the model as ONNX and check it against PyTorch on a real image.

    Args:
        config (str): Config file the checkpoint belongs to.
        checkpoint (str): Checkpoint file (pruned or not).
        path (str): Output ``.onnx`` file.
        shape (Sequence[int], optional): (H, W) of the export; default: the
            parity image's test-time size.
        dynamic (bool): Dynamic batch, height and width.
        image (str, optional): Parity image; default: the config's first
            test image.
        rtol (float): Parity tolerance (see :func:`npdg.deploy.check_parity`).
        cfg_options (dict, optional): Config overrides.

    Returns:
        dict: ``path``, ``shape``, ``dynamic`` and the parity report.

    Raises:
        npdg.deploy.OnnxParityError: If onnxruntime disagrees with PyTorch.
    """
    from npdg import deploy
    for file in (config, checkpoint):
        if not osp.isfile(file):
            raise FileNotFoundError(f'{file!r} does not exist.')
    cfg = load_config(config, cfg_options)
    model = build_segmentor(cfg, checkpoint).eval()
    inputs = deploy.parity_input(cfg, model, image, shape)
    shape = tuple(inputs.shape[2:])
    deploy.export_onnx(model, path, shape, dynamic=dynamic, metadata=dict(
        npdg_version=npdg.__version__, config=osp.basename(config),
        checkpoint=osp.basename(checkpoint)))
    session = deploy.onnx_session(path)
    report = dict(path=path, shape=list(shape), dynamic=dynamic,
                  parity=deploy.check_parity(model, path, inputs, rtol, session))
    if dynamic:  # a second size: the dynamic axes really are dynamic
        other = torch.nn.functional.interpolate(
            inputs, size=(shape[0] // 2 + 8, shape[1] // 2 + 16), mode='bilinear')
        report['parity_other_size'] = deploy.check_parity(model, path, other, rtol, session)
    return report


def main(argv=None):
    """Command-line entry point."""
    args = parse_args(argv)
    if args.out:
        ckpt_path, cfg_path = export(args.config, args.checkpoint, args.out,
                                     args.name, args.cfg_options)
        size = osp.getsize(ckpt_path) / 2**20
        print(f'slim checkpoint: {ckpt_path} ({size:.1f} MiB)')
        print(f'config:          {cfg_path}')
    if args.onnx:
        report = export_onnx(args.config, args.checkpoint, args.onnx, args.shape,
                             args.dynamic, args.image, args.rtol, args.cfg_options)
        parity = report['parity']
        size = osp.getsize(args.onnx) / 2**20
        print(f'onnx:            {args.onnx} ({size:.1f} MiB, input 1x3x{report["shape"][0]}x'
              f'{report["shape"][1]}{", dynamic" if args.dynamic else ""})')
        print(f'parity:          max |onnxruntime - torch| = {parity["max_abs_diff"]:.2e} '
              f'(tolerance {parity["tolerance"]:.2e}), argmax agreement '
              f'{parity["argmax_agreement"] * 100:.3f} %')


if __name__ == '__main__':
    main()
