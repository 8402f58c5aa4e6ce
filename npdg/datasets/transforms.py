"""``CheckSegSample``: fail loudly on a bad image/label pair.

Put it right after ``LoadAnnotations`` in every pipeline::

    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),

The size check compares the label with the image as it was read from disk
(``ori_shape``), so test pipelines that resize the image *before* loading the
label (mmseg's convention: evaluation at the label's resolution) work too.

Unconverted label ids (e.g. GTA5 / Cityscapes ``labelIds``) fed as train ids
otherwise train and evaluate silently on wrong classes.
"""
from typing import List, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


def invalid_label_values(label: np.ndarray, num_classes: int,
                         ignore_index: int) -> List[int]:
    """Return the values of ``label`` outside [0, num_classes) + ignore.

    One vectorised comparison in the common (valid) case; the offending
    values are only collected when there are some.

    Args:
        label (np.ndarray): Label map.
        num_classes (int): Number of valid train ids.
        ignore_index (int): The ignore value.

    Returns:
        list[int]: Sorted invalid values (empty when the label is valid).
    """
    out_of_range = label >= num_classes
    if label.dtype.kind != 'u':
        out_of_range |= label < 0
    bad = out_of_range & (label != ignore_index)
    if not bad.any():
        return []
    return [int(v) for v in np.unique(label[bad])]


@TRANSFORMS.register_module()
class CheckSegSample(BaseTransform):
    """Check that a loaded image/label pair is usable.

    Required keys: ``gt_seg_map``; ``ori_shape`` (or ``img``) for the size
    check; ``img_path`` / ``seg_map_path`` are named in errors.

    Args:
        num_classes (int): Valid train ids are ``0 .. num_classes - 1``.
        ignore_index (int): The ignore value, also allowed.
        check_size (bool): Whether image and label sizes must agree.
    """

    def __init__(self, num_classes: int = 19, ignore_index: int = 255,
                 check_size: bool = True) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.check_size = check_size

    @staticmethod
    def _image_hw(results: dict) -> Optional[Tuple[int, int]]:
        """Return the image's (height, width) as read from disk, if known.

        Args:
            results (dict): Pipeline results.

        Returns:
            tuple[int, int], optional: (H, W) or ``None``.
        """
        if results.get('ori_shape') is not None:
            return tuple(results['ori_shape'][:2])
        if results.get('img') is not None:
            return tuple(results['img'].shape[:2])
        if results.get('img_shape') is not None:
            return tuple(results['img_shape'][:2])
        return None

    @staticmethod
    def _where(results: dict) -> str:
        """Return the sample's files, for messages.

        Args:
            results (dict): Pipeline results.

        Returns:
            str: ``img_path=..., seg_map_path=...``.
        """
        return (f"img_path={results.get('img_path')!r}, "
                f"seg_map_path={results.get('seg_map_path')!r}")

    def transform(self, results: dict) -> dict:
        """Check the sample; return it unchanged.

        Args:
            results (dict): Pipeline results after ``LoadAnnotations``.

        Returns:
            dict: ``results``.

        Raises:
            ValueError: Label missing or not single-channel, sizes differ, or
                invalid label values.
        """
        label = results.get('gt_seg_map')
        if label is None:
            raise ValueError(
                f'CheckSegSample found no gt_seg_map ({self._where(results)}):'
                f' put it right after LoadAnnotations.')
        if label.ndim != 2:
            raise ValueError(
                f'Label has shape {tuple(label.shape)}: {label.shape[-1] if label.ndim == 3 else "?"}'
                f' channels where one is expected ({self._where(results)}). Labels must be '
                f'single-channel PNGs of train ids 0..{self.num_classes - 1} (and '
                f'{self.ignore_index}); a colour (RGB) label map is not one. Use the '
                f'converted *_labelTrainIds.png files (python '
                f'tools/dataset_converters/<dataset>.py <root>) or point seg_map_suffix at '
                f'them.')
        image_hw = self._image_hw(results) if self.check_size else None
        if image_hw is not None and image_hw != tuple(label.shape[:2]):
            raise ValueError(
                f'Image size {image_hw[1]}x{image_hw[0]} differs from label '
                f'size {label.shape[1]}x{label.shape[0]} '
                f'({self._where(results)}). Exclude the frame (the GTA5 '
                f'converter lists such frames in skipped_frames.txt).')
        bad = invalid_label_values(label, self.num_classes, self.ignore_index)
        if bad:
            raise ValueError(
                f'Label has values {bad} outside the train ids '
                f'0..{self.num_classes - 1} and ignore index '
                f'{self.ignore_index} ({self._where(results)}). Unconverted '
                f'label ids (e.g. GTA5 / Cityscapes labelIds) were probably '
                f'fed as train ids: run the converter '
                f'(python tools/dataset_converters/<dataset>.py <root>) and '
                f'read the *_labelTrainIds.png files.')
        return results

    def __repr__(self) -> str:
        """Return the transform's configuration.

        Returns:
            str: ``CheckSegSample(num_classes=..., ...)``.
        """
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, '
                f'check_size={self.check_size})')


@TRANSFORMS.register_module()
class PseudoTargetStyle(BaseTransform):
    """Re-style an image by a fixed random camera: a label-free pseudo-target.

    Held-out *source* frames passed through this transform stand in for an
    unseen domain when a setting must be chosen without target labels
    (``benchmarks/accuracy.py --study perturbation``). Each image gets its own
    draw, fixed by ``seed`` and the image's file name (the same image is
    always re-styled the same way): per-channel gain, global contrast,
    gamma and saturation, each uniform in its range. Nothing here is taken
    from any target domain.

    Required keys: ``img`` (uint8 BGR), ``img_path``. Modified key: ``img``.

    Args:
        gain (tuple[float]): Range of the per-channel gains.
        contrast (tuple[float]): Range of the contrast factor (around the mean).
        gamma (tuple[float]): Range of the gamma exponent.
        saturation (tuple[float]): Range of the saturation factor.
        seed (int): Seed of the draws.
    """

    def __init__(self, gain: Tuple[float, float] = (0.7, 1.3),
                 contrast: Tuple[float, float] = (0.6, 1.4),
                 gamma: Tuple[float, float] = (0.7, 1.5),
                 saturation: Tuple[float, float] = (0.5, 1.5), seed: int = 0) -> None:
        for name, (low, high) in dict(gain=gain, contrast=contrast, gamma=gamma,
                                      saturation=saturation).items():
            if not 0 < low <= high:
                raise ValueError(f'PseudoTargetStyle: {name} must be a range 0 < low <= high, '
                                 f'got {(low, high)}')
        self.gain, self.contrast, self.gamma, self.saturation = gain, contrast, gamma, saturation
        self.seed = int(seed)

    def _rng(self, path: str) -> np.random.Generator:
        import hashlib
        import os.path as osp
        digest = hashlib.sha256(f'{self.seed}:{osp.basename(str(path))}'.encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], 'little'))

    def transform(self, results: dict) -> dict:
        rng = self._rng(results.get('img_path', ''))
        img = results['img'].astype(np.float32) / 255.0
        img = img * rng.uniform(*self.gain, size=3).astype(np.float32)
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * np.float32(rng.uniform(*self.saturation))
        img = img.mean() + (img - img.mean()) * np.float32(rng.uniform(*self.contrast))
        img = np.clip(img, 0.0, 1.0) ** np.float32(rng.uniform(*self.gamma))
        results['img'] = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(gain={self.gain}, contrast={self.contrast}, '
                f'gamma={self.gamma}, saturation={self.saturation}, seed={self.seed})')
