"""Deprecated alias of :mod:`nasforge.cli.compress`."""

from nasforge._deprecated import moved_module

__getattr__ = moved_module(__name__, "nasforge.cli.compress")
