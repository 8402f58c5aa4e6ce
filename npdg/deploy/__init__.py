"""Deployment: ONNX export of the inference path with an on-the-spot parity check."""
from .onnx_export import (
                          OPSET,
                          PARITY_RTOL,
                          OnnxParityError,
                          SegmentorLogits,
                          check_parity,
                          export_onnx,
                          onnx_session,
                          parity_input,
                          preprocessing_metadata,
)

__all__ = ['OPSET', 'PARITY_RTOL', 'OnnxParityError', 'SegmentorLogits', 'check_parity',
           'export_onnx', 'onnx_session', 'parity_input', 'preprocessing_metadata']
