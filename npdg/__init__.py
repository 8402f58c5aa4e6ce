"""npdg: domain generalization for MMSegmentation 1.x by network pruning.

Importing ``npdg`` first applies the compatibility shims (``npdg.compat``),
then registers every npdg dataset, transform, metric and hook in mmseg's
registries. Configs reach them with ``custom_imports=dict(imports=['npdg'])``.
"""
from . import compat

compat.apply()

from .utils import pretrained as _pretrained  # noqa: E402

_pretrained.install()

from . import amp, datasets, engine, evaluation, hooks, models, perturbation, statistics  # noqa: E402,F401,E501
from .version import __version__  # noqa: E402,F401
