"""Deprecated alias of :mod:`nasforge.export`."""

from nasforge._deprecated import moved_module

__getattr__ = moved_module(__name__, "nasforge.export")
