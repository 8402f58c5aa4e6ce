"""Stub: being written."""
MultiTargetIoUMetric=None
