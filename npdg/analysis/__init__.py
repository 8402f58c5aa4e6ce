"""Model analysis: FLOPs/parameters and latency of the inference path."""
from .complexity import format_complexity, format_input_shape, inference_params, segmentor_complexity
from .latency import measure_latency, segmentor_latency

__all__ = [
    'segmentor_complexity', 'format_complexity', 'format_input_shape',
    'inference_params', 'measure_latency', 'segmentor_latency'
]
