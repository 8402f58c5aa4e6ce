"""Stub: being written."""
MultiTargetDataset=None
