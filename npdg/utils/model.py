"""Build a segmentor from a config for inference-side tools."""
import torch
from mmengine.model import revert_sync_batchnorm


def build_segmentor(cfg, checkpoint=None, device='cpu'):
    """Build ``cfg.model`` (no pretrained download) and load a checkpoint strictly.

    A checkpoint of a pruned model carries its structure
    (``meta['npdg']['structure']``); it is applied to the freshly built model
    before the weights are loaded, so pruned checkpoints load with their own
    (unpruned) config. Every key and tensor shape must match: mismatches
    raise a ``RuntimeError`` listing them.

    Args:
        cfg (mmengine.Config): A full mmseg config (``custom_imports`` honoured).
        checkpoint (str, optional): Checkpoint to load; every tensor must match.
        device (str): Device to put the model on.

    Returns:
        torch.nn.Module: The segmentor in eval mode.
    """
    from mmengine.utils import import_modules_from_strings
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from npdg.pruning.structure import load_pruned_checkpoint

    register_all_modules(init_default_scope=True)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    model = MODELS.build(cfg.model)
    model = revert_sync_batchnorm(model)
    if checkpoint is not None:
        ckpt = load_pruned_checkpoint(model, checkpoint, strict=True)
        meta = (ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}
        if 'dataset_meta' in meta:
            model.dataset_meta = meta['dataset_meta']
    model.to(torch.device(device))
    return model.eval()
