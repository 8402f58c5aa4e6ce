"""Datasets, label mappings and sample checks (registered in mmseg)."""
from .gta import GTA5Dataset
from .mapillary import Mapillary19Dataset
from .multi_target import MultiTargetDataset
from .synthia import SynthiaDataset
from .transforms import CheckSegSample, PseudoTargetStyle

__all__ = ['GTA5Dataset', 'Mapillary19Dataset', 'MultiTargetDataset', 'SynthiaDataset',
           'CheckSegSample', 'PseudoTargetStyle']
