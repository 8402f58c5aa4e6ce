"""One activation observer for every unit layer: BN channels and attention heads.

The statistics hook (``SensitivityStatisticsHook``) and the scoring context's
feature maps (``ScoringContext.mean_maps``, DSS) both watch the unit layers'
activations while the model runs. They do it through :class:`ActivationObserver`:
a forward hook on each BN layer and the ``head_observer`` of each per-head
attention module, removed (and the previous head observer restored) on
:meth:`~ActivationObserver.detach` or at the end of a ``with`` block.
"""


class ActivationObserver:
    """Call ``on_channels`` / ``on_heads`` with the activations of ``layers``.

    Args:
        layers (dict[str, nn.Module]): Layer name -> a BN layer or a per-head
            attention module (one with a ``head_observer`` attribute).
        on_channels (Callable): ``on_channels(name, module, input, output)`` after
            each forward of a BN layer (``input`` and ``output`` are tensors).
        on_heads (Callable): ``on_heads(name, module, heads)`` with each head's
            output, ``(B, heads, L, head_dim)``, of an attention module.
    """

    def __init__(self, layers, on_channels, on_heads):
        self.layers = dict(layers)
        self.on_channels, self.on_heads = on_channels, on_heads
        self._handles, self._previous = [], []

    @staticmethod
    def is_heads(module):
        """Whether ``module`` is observed per head (it has a ``head_observer``)."""
        return hasattr(module, 'head_observer')

    def attach(self):
        """Register the observers (re-attaching first removes the old ones)."""
        self.detach()
        for name, module in self.layers.items():
            if self.is_heads(module):
                self._previous.append((module, module.head_observer))
                module.head_observer = (
                    lambda heads, name=name, module=module: self.on_heads(name, module, heads))
            else:
                self._handles.append(module.register_forward_hook(
                    lambda mod, args, out, name=name: self.on_channels(name, mod, args[0], out)))
        return self

    def detach(self):
        """Remove every observer and restore the head observers found at attach."""
        for handle in self._handles:
            handle.remove()
        for module, previous in reversed(self._previous):
            module.head_observer = previous
        self._handles, self._previous = [], []

    def __enter__(self):
        return self.attach()

    def __exit__(self, *exc):
        self.detach()
        return False
