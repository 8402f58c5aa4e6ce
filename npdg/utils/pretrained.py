"""Pretrained-weight resolution with a local-first lookup and a clear failure.

mmseg configs name their backbone weights by URL (``https://...``) or by
``open-mmlab://`` alias. On machines without internet access a plain mmengine
run either fails with a bare ``URLError`` deep inside weight initialisation
or, worse, a user "fixes" it by dropping ``init_cfg`` and trains from random
init without noticing. This module re-registers mmengine's remote checkpoint
loaders so that:

1. a local copy is used when present: ``$NPDG_PRETRAINED_DIR/<file>`` (default
   ``checkpoints/<file>``), then the torch hub cache
   (``~/.cache/torch/hub/checkpoints/<file>``, where a normal download lands);
2. otherwise the original download is attempted (unless ``NPDG_OFFLINE=1``);
3. if that fails, :class:`PretrainedWeightsNotFound` stops the run with a
   message that says where to put the file and how to opt into random init.
"""
import os
import os.path as osp
from urllib.parse import urlparse

import torch
from mmengine.runner import checkpoint as mme_ckpt

from .checkpoint_io import load_from_local

ENV_DIR = 'NPDG_PRETRAINED_DIR'
ENV_OFFLINE = 'NPDG_OFFLINE'
DEFAULT_DIR = 'checkpoints'


class PretrainedWeightsNotFound(FileNotFoundError):
    """Raised when named pretrained weights are neither local nor downloadable."""


def local_candidates(filename):
    """List the local paths searched for a remote checkpoint's file name.

    Args:
        filename (str): Base name of the checkpoint file.

    Returns:
        list[str]: Candidate paths, in search order.
    """
    pretrained_dir = os.environ.get(ENV_DIR, DEFAULT_DIR)
    hub_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    return [osp.join(pretrained_dir, filename), osp.join(hub_dir, filename)]


def resolve_url(name):
    """Turn an ``open-mmlab://`` alias into its download URL.

    Args:
        name (str): A URL or an ``open-mmlab://``/``openmmlab://`` alias.

    Returns:
        str: The download URL (unchanged for plain URLs).
    """
    for prefix in ('open-mmlab://', 'openmmlab://'):
        if name.startswith(prefix):
            alias = name[len(prefix):]
            alias = mme_ckpt.get_deprecated_model_names().get(alias, alias)
            urls = mme_ckpt.get_external_models()
            if alias not in urls:
                raise KeyError(f'Unknown pretrained alias {name!r}.')
            return urls[alias]
    return name


def missing_message(name, url, tried, error):
    """Compose the error shown when pretrained weights cannot be had.

    Args:
        name (str): The checkpoint as the config names it.
        url (str): Its download URL.
        tried (list[str]): Local paths that were searched.
        error (Exception or None): The download error, if one was tried.

    Returns:
        str: A message naming the file and the ways to supply it.
    """
    fname = osp.basename(urlparse(url).path)
    reason = (f'download failed ({type(error).__name__}: {error})'
              if error is not None else f'downloads disabled by {ENV_OFFLINE}=1')
    return (
        f'Pretrained weights {name!r} are not available: not found locally '
        f'(looked in {", ".join(tried)}) and {reason}.\n'
        f'Fix: download {url} on a machine with internet access and put it at '
        f'{tried[0]} (or set {ENV_DIR} to its folder), or point the config at '
        'a local file, e.g. --cfg-options '
        'model.backbone.init_cfg.checkpoint=/path/to/' + fname + '.\n'
        'To train from random initialisation on purpose, pass --cfg-options '
        'model.pretrained=None model.backbone.init_cfg=None')


def load_remote_or_local(name, map_location=None):
    """Load remote pretrained weights, preferring a local copy.

    Args:
        name (str): URL or ``open-mmlab://`` alias.
        map_location (str, optional): Same as :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.
    """
    url = resolve_url(name)
    if not url.startswith(('http://', 'https://')):
        return mme_ckpt.load_from_openmmlab(name, map_location=map_location)
    tried = local_candidates(osp.basename(urlparse(url).path))
    for path in tried:
        if osp.isfile(path):
            return load_from_local(path, map_location=map_location)
    if os.environ.get(ENV_OFFLINE, '0') not in ('', '0'):
        raise PretrainedWeightsNotFound(missing_message(name, url, tried, None))
    try:
        return mme_ckpt.load_from_http(url, map_location=map_location)
    except Exception as error:  # network errors come in many types
        raise PretrainedWeightsNotFound(
            missing_message(name, url, tried, error)) from error


def install():
    """Register :func:`load_remote_or_local` for remote checkpoint prefixes."""
    mme_ckpt.CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://', 'open-mmlab://', 'openmmlab://'),
        loader=load_remote_or_local, force=True)
