"""SYNTHIA (RAND-CITYSCAPES) in the 19 Cityscapes train-id classes.

Layout (after ``python tools/dataset_converters/synthia.py <root>``)::

    <root>/RGB/0000000.png
    <root>/GT/LABELS/0000000_labelTrainIds.png
    <root>/skipped_frames.txt     frames the converter skipped (excluded)
    <root>/train.txt, val.txt     with --val-fraction: held-out source frames

DG papers usually report SYNTHIA-trained models on 16 classes (terrain, truck and train
left out: SYNTHIA hardly has them); npdg's metric evaluates all 19.
"""
from mmseg.registry import DATASETS

from .gta import GTA5Dataset


@DATASETS.register_module()
class SynthiaDataset(GTA5Dataset):
    """SYNTHIA with labels converted to the 19 Cityscapes train ids.

    Same options as :class:`GTA5Dataset` (``split_file``, ``skip_list``); only the
    folders differ.
    """
    NAME = 'SYNTHIA'
    CONVERTER = 'python tools/dataset_converters/synthia.py'
    LAYOUT = ('Expected SYNTHIA layout: <root>/RGB/0000000.png and '
              '<root>/GT/LABELS/0000000_labelTrainIds.png.')

    def __init__(self, data_prefix: dict = dict(img_path='RGB', seg_map_path='GT/LABELS'),
                 **kwargs) -> None:
        super().__init__(data_prefix=data_prefix, **kwargs)
