"""Old import paths that keep working, with a ``DeprecationWarning``, after a name moved.

A module that lost names gets a module-level ``__getattr__`` from :func:`moved`; a module
that moved as a whole becomes a file whose ``__getattr__`` is :func:`moved_module`. The new
home is named by string and imported on first use, so an old path never makes a lower
layer import a higher one. ``CHANGELOG.md`` lists every moved name.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

REMOVAL = "nasforge 0.3"


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new}; import it from there (or from nasforge). The old path "
        f"will be removed in {REMOVAL}.",
        DeprecationWarning,
        stacklevel=3,
    )


def moved(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that moved: ``{name: "new.module"}`` or
    ``{name: "new.module:new_name"}``."""

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new_module, _, new_name = target.partition(":")
        new_name = new_name or name
        _warn(f"{module}.{name}", f"{new_module}.{new_name}")
        return getattr(importlib.import_module(new_module), new_name)

    return __getattr__


def moved_module(module: str, new_module: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a module that moved as a whole to ``new_module``."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        target = importlib.import_module(new_module)
        if not hasattr(target, name):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        _warn(f"{module}.{name}", f"{new_module}.{name}")
        return getattr(target, name)

    return __getattr__
