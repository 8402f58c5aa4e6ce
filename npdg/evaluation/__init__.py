"""Evaluation metrics (registered in mmseg)."""
from .multi_target_iou import MultiTargetIoUMetric

__all__ = ['MultiTargetIoUMetric']
