"""Stub: being written."""
CheckSegSample=None
