"""Stub: being written."""
ModelComplexityHook=None
