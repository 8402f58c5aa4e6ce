"""Build a segmentor from a config for inference-side tools."""
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import load_checkpoint


def build_segmentor(cfg, checkpoint=None, device='cpu'):
    """Build ``cfg.model`` (no pretrained download) and load a checkpoint strictly.

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

    register_all_modules(init_default_scope=True)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    model = MODELS.build(cfg.model)
    model = revert_sync_batchnorm(model)
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        if 'dataset_meta' in meta:
            model.dataset_meta = meta['dataset_meta']
    model.to(torch.device(device))
    return model.eval()
