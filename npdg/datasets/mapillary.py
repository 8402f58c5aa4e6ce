"""Stub: being written."""
Mapillary19Dataset=None
