"""Stub: being written."""
GTA5Dataset=Mapillary19Dataset=None
