"""ONNX export of a (pruned) segmentor's inference path, checked on the spot.

The exported graph is :class:`SegmentorLogits`: backbone (+ neck) + decode
head (``EncoderDecoder._forward``, the per-head attention of a converted
SegFormer included) followed by the bilinear resize of the logits to the input
size, i.e. what ``encode_decode`` computes for one whole image. Input:
``input`` (N, 3, H, W) float32, already normalised (``(bgr_to_rgb(img) -
mean) / std``, the values are written into the model's metadata); output:
``logits`` (N, num_classes, H, W). No sliding window, no test-time flips.

:func:`check_parity` runs the exported file in onnxruntime and compares its
logits with PyTorch's on the same (real) image; :func:`parity_input` prepares
that image the way the config's test pipeline and data preprocessor do.
"""
import io
import json
import os.path as osp
import warnings
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from npdg.analysis.inference_path import InferencePath
from npdg.utils.checkpoint_io import atomic_write

#: ONNX opset of the export (onnxruntime >= 1.14 runs it).
OPSET = 17
#: Default parity tolerance: max |logit difference| relative to max(1, max |logit|).
PARITY_RTOL = 1e-4


class OnnxParityError(RuntimeError):
    """onnxruntime's logits differ from PyTorch's beyond the tolerance."""


def _require(module: str):
    """Import onnx/onnxruntime with an error that says how to install them."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f'ONNX export needs {module!r}: pip install onnx onnxruntime '
            f'(both are in requirements.txt).') from exc


class SegmentorLogits(nn.Module):
    """The exported computation: inference path + resize to the input size.

    Args:
        model (nn.Module): An unwrapped segmentor in eval mode.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.path = InferencePath(model)
        head = getattr(model, 'decode_head', None)
        self.align_corners = bool(getattr(head, 'align_corners', False))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits at the input's resolution.

        Args:
            inputs (Tensor): Normalised images (N, 3, H, W).

        Returns:
            Tensor: Logits (N, num_classes, H, W).
        """
        logits = self.path(inputs)
        if isinstance(logits, (list, tuple)):
            logits = logits[0]
        return F.interpolate(logits, size=inputs.shape[2:], mode='bilinear',
                             align_corners=self.align_corners)


def preprocessing_metadata(model: nn.Module) -> Dict[str, str]:
    """What a deployer must do to an image before the exported model.

    Args:
        model (nn.Module): The segmentor (its ``data_preprocessor``).

    Returns:
        dict[str, str]: ``mean``, ``std`` (JSON lists, RGB order) and
        ``bgr_to_rgb``; empty when the model has no such preprocessor.
    """
    pre = getattr(model, 'data_preprocessor', None)
    mean, std = getattr(pre, 'mean', None), getattr(pre, 'std', None)
    if mean is None or std is None:
        return {}
    return dict(mean=json.dumps([round(float(v), 6) for v in mean.flatten()]),
                std=json.dumps([round(float(v), 6) for v in std.flatten()]),
                bgr_to_rgb=str(bool(getattr(pre, 'channel_conversion', False))),
                input='normalised float32 (N, 3, H, W): (rgb - mean) / std')


def export_onnx(model: nn.Module,
                path: str,
                shape: Sequence[int],
                dynamic: bool = False,
                opset: int = OPSET,
                metadata: Optional[Dict[str, str]] = None) -> str:
    """Write the model's inference path as an ONNX file.

    Args:
        model (nn.Module): An unwrapped segmentor (pruned or not), on CPU.
        path (str): Output ``.onnx`` file (its folder is created).
        shape (Sequence[int]): (H, W) of the traced input.
        dynamic (bool): Batch size, height and width become dynamic axes
            (the traced shape is then only an example).
        opset (int): ONNX opset version.
        metadata (dict[str, str], optional): Extra ``metadata_props``.

    Returns:
        str: ``path``.
    """
    onnx = _require('onnx')
    if len(shape) != 2 or not all(int(v) > 0 for v in shape):
        raise ValueError(f'--shape must be two positive ints H W; got {shape!r}.')
    wrapper = SegmentorLogits(model).eval()
    example = torch.zeros(1, 3, int(shape[0]), int(shape[1]))
    axes = None
    if dynamic:
        axes = {name: {0: 'batch', 2: 'height', 3: 'width'}
                for name in ('input', 'logits')}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns about its deprecation in favour of
        # dynamo=True, which needs onnxscript; it is still the one that
        # exports mmseg's models without extra dependencies.
        warnings.simplefilter('ignore')
        with torch.no_grad():
            torch.onnx.export(wrapper, (example, ), buffer, dynamo=False,
                              opset_version=opset, input_names=['input'],
                              output_names=['logits'], dynamic_axes=axes,
                              do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    props = dict(preprocessing_metadata(model), **(metadata or {}))
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    # All or nothing (temporary file, fsync, rename): a kill leaves no half file.
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())
    return path


def onnx_session(path: str, threads: Optional[int] = None):
    """An onnxruntime CPU session of an exported file.

    Args:
        path (str): The ``.onnx`` file.
        threads (int, optional): Intra-op threads (default: onnxruntime's).

    Returns:
        onnxruntime.InferenceSession: The session.
    """
    ort = _require('onnxruntime')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path!r} does not exist.')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def check_parity(model: nn.Module,
                 path: str,
                 inputs: torch.Tensor,
                 rtol: float = PARITY_RTOL,
                 session=None) -> Dict[str, float]:
    """Compare onnxruntime's logits with PyTorch's on the same input.

    The check passes when ``max |onnx - torch| <= rtol * max(1, max |torch|)``.

    Args:
        model (nn.Module): The segmentor that was exported.
        path (str): The exported file.
        inputs (Tensor): Normalised images (N, 3, H, W).
        rtol (float): Tolerance relative to the largest logit.
        session (onnxruntime.InferenceSession, optional): Reuse a session.

    Returns:
        dict[str, float]: ``max_abs_diff``, ``max_abs_logit``, ``tolerance``,
        ``argmax_agreement`` (fraction of pixels with the same class).

    Raises:
        OnnxParityError: If the difference exceeds the tolerance.
    """
    session = session or onnx_session(path)
    with torch.no_grad():
        expected = SegmentorLogits(model).eval()(inputs).float().numpy()
    actual = session.run(None, {'input': inputs.float().numpy()})[0]
    if actual.shape != expected.shape:
        raise OnnxParityError(
            f'{path}: onnxruntime returned logits of shape {actual.shape}, PyTorch '
            f'{expected.shape}; export again (with --dynamic for other input sizes).')
    diff = float(np.abs(actual - expected).max())
    scale = float(np.abs(expected).max())
    report = dict(max_abs_diff=diff, max_abs_logit=scale,
                  tolerance=rtol * max(1.0, scale),
                  argmax_agreement=float((actual.argmax(1) == expected.argmax(1)).mean()))
    if not diff <= report['tolerance']:
        raise OnnxParityError(
            f'{path}: onnxruntime logits differ from PyTorch by {diff:.3g} '
            f'(> {report["tolerance"]:.3g}); the export is not faithful.')
    return report


def parity_input(cfg, model: nn.Module, image: Optional[str] = None,
                 shape: Optional[Sequence[int]] = None) -> torch.Tensor:
    """A real image, prepared as the model sees it at test time.

    Args:
        cfg (mmengine.Config): The model's config (test pipeline and dataset).
        model (nn.Module): The segmentor (its ``data_preprocessor``).
        image (str, optional): An image file; default: the first sample of
            ``cfg.test_dataloader.dataset`` (the first target of a
            multi-target set).
        shape (Sequence[int], optional): (H, W) to resize the prepared image
            to (a static export only accepts its traced shape).

    Returns:
        Tensor: (1, 3, H, W) normalised float32.

    Raises:
        FileNotFoundError: If the image (or the test set) cannot be read.
    """
    import mmcv
    from mmseg.registry import DATASETS
    if image is not None:
        if not osp.isfile(image):
            raise FileNotFoundError(f'--image {image!r} does not exist.')
        img = mmcv.imread(image)  # BGR, HWC, uint8
        packed = dict(inputs=[torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))])
    else:
        try:
            sample = DATASETS.build(cfg.test_dataloader.dataset)[0]
        except (FileNotFoundError, IndexError, KeyError) as exc:
            raise FileNotFoundError(
                'the parity check needs a real image: the config\'s '
                f'test_dataloader.dataset could not give one ({exc}); pass '
                '--image PATH.') from exc
        packed = dict(inputs=[sample['inputs']])
    from mmseg.structures import SegDataSample
    with torch.no_grad():  # the model's own data preprocessor (channel order, mean, std)
        inputs = model.data_preprocessor(
            dict(inputs=packed['inputs'], data_samples=[SegDataSample()]), False)['inputs']
    inputs = inputs.float()
    if shape is not None and tuple(inputs.shape[2:]) != tuple(shape):
        inputs = F.interpolate(inputs, size=tuple(int(v) for v in shape),
                               mode='bilinear', align_corners=False)
    return inputs
