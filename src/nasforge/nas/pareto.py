"""Deprecated alias of :mod:`nasforge.pareto`."""

from nasforge._deprecated import moved_module

__getattr__ = moved_module(__name__, "nasforge.pareto")
