"""``NpdgRunner``: mmengine's Runner with what npdg needs, named in the config.

npdg's configs set ``runner_type = 'NpdgRunner'`` (``configs/_base_/
default_runtime.py``); mmseg's own ``tools/train.py`` / ``tools/test.py``
build it through mmengine's ``RUNNERS`` registry whenever a config has a
``runner_type``. Compared with mmengine's Runner it

* resolves the config's ``'${name}'`` settings (after ``--cfg-options``) and
  refuses misspelt top-level keys before anything is built
  (:mod:`npdg.utils.settings`);
* converts SegFormer's packed attention to per-head attention once, when
  the model is built, so no hook has to rebuild the optimizer, schedulers or
  DDP wrapper for it (:mod:`npdg.models.per_head_attention`);
* adds a :class:`npdg.hooks.PrunedCheckpointHook` when the config has none,
  so a pruned checkpoint resizes the model before its weights load (strict),
  and an in-run prune re-points the optimizer, schedulers, DDP and EMA.

Nothing here changes mmengine's ``Runner`` class itself.
"""
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import RUNNERS


@RUNNERS.register_module()
class NpdgRunner(Runner):
    """mmengine's Runner plus npdg's settings, attention conversion and
    structure-aware checkpoints (module docstring)."""

    @classmethod
    def from_cfg(cls, cfg):
        """Resolve npdg's named settings and check the keys, then build as mmengine does.

        Args:
            cfg (Config): The merged config (``--cfg-options`` applied).

        Returns:
            NpdgRunner: The runner.
        """
        from npdg.utils.settings import check_top_level_keys, resolve_settings
        check_top_level_keys(cfg, source=getattr(cfg, 'filename', None) or 'the config')
        resolve_settings(cfg)
        return super().from_cfg(cfg)

    def build_model(self, model):
        """Build the model, then convert packed attention to per-head attention (once).

        Args:
            model (nn.Module | dict): The model or its config.

        Returns:
            nn.Module: The model (its attention per head where it had packed heads).
        """
        model = super().build_model(model)
        from npdg.models.convert import convert_mit_attention

        from .model_prep import needs_attention_conversion
        if needs_attention_conversion(model):
            count = convert_mit_attention(model)
            print_log(f'[npdg] converted {count} attention modules to per-head attention '
                      'when the model was built (exactly equivalent; heads can be observed, '
                      'gated and removed)', logger='current')
        return model

    def register_hooks(self, default_hooks=None, custom_hooks=None):
        """Register the hooks, adding ``PrunedCheckpointHook`` when the config has none.

        Args:
            default_hooks (dict, optional): As mmengine's.
            custom_hooks (list, optional): As mmengine's.
        """
        super().register_hooks(default_hooks, custom_hooks)
        from mmseg.registry import HOOKS
        hook_cls = HOOKS.get('PrunedCheckpointHook')  # registered by npdg.hooks
        if not any(isinstance(h, hook_cls) for h in self._hooks):
            self.register_hook(hook_cls(check_unstructured=False))
