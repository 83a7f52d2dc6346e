"""The one plugin registry.

Every space, strategy, evaluator, compressor, executor, scheduler, dataset and tracker
is registered here with the same decorator, whether it ships with nasforge or with a user's
own code::

    import nasforge as nf

    @nf.register("strategy", "mine")
    class MyStrategy: ...

    nf.available("strategy")      # [..., 'mine', ...]
    nf.build("strategy", "mine", seed=0)

Built-ins are imported lazily, the first time their kind is looked up. Third-party packages
add plugins through the entry-point group ``nasforge.plugins``: each entry point names a
module (or object) whose import registers its plugins; they are loaded on the first lookup.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import logging
import re
from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

from nasforge.errors import ConfigError, RegistryError, close_matches

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "available",
    "build",
    "get",
    "name_of",
    "register",
    "unregister",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "nasforge.plugins"

KINDS: tuple[str, ...] = (
    "compressor",
    "dataset",
    "evaluator",
    "executor",
    "scheduler",
    "space",
    "strategy",
    "tracker",
)

# Modules whose import registers the built-in plugins of each kind.
_BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "compressor": (
        "nasforge.compress.distill",
        "nasforge.compress.quantize.qat",
        "nasforge.compress.quantize.ptq",
        "nasforge.compress.prune.structured",
        "nasforge.compress.prune.unstructured",
    ),
    "dataset": ("nasforge.data.datasets", "nasforge.data.files"),
    "evaluator": (
        "nasforge.evaluators.tabular",
        "nasforge.evaluators.training",
        "nasforge.evaluators.supernet",
        "nasforge.evaluators.proxies",
        "nasforge.evaluators.compression",
        "nasforge.evaluators.transfer",
    ),
    "executor": (
        "nasforge.execution.serial",
        "nasforge.execution.process",
        "nasforge.execution.ray",
    ),
    "scheduler": ("nasforge.nas.schedulers",),
    "space": ("nasforge.space.builtin", "nasforge.space.compression", "nasforge.space.transfer"),
    "strategy": (
        "nasforge.strategy.random",
        "nasforge.strategy.grid",
        "nasforge.strategy.evolution",
        "nasforge.strategy.bayesian",
        "nasforge.strategy.local",
        "nasforge.strategy.nsga2",
        "nasforge.strategy.reinforce",
    ),
    "tracker": ("nasforge.nas.trackers",),
}

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

_entries: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_builtins_loaded: set[str] = set()
_entry_points_loaded = False

T = TypeVar("T")


def _check_kind(kind: str) -> None:
    if kind not in _entries:
        raise RegistryError(
            f"unknown plugin kind {kind!r}; expected one of {', '.join(KINDS)}."
            + close_matches(kind, KINDS)
        )


def register(kind: str, name: str | None = None) -> Callable[[T], T]:
    """Class or function decorator that registers a plugin under ``kind``/``name``.

    ``name`` defaults to the lower-cased ``__name__`` of the decorated object. Names are
    lower-case identifiers; registering a name that is already taken raises
    :class:`RegistryError` (re-importing the same module is harmless).
    """
    _check_kind(kind)

    def decorator(obj: T) -> T:
        if getattr(obj, "__module__", None) not in _BUILTIN_MODULES[kind]:
            _load_builtins(kind)  # built-ins own their names, whatever registers first
        key = name if name is not None else getattr(obj, "__name__", "").lower()
        if not _NAME_RE.match(key):
            raise RegistryError(
                f"plugin name must be a lower-case identifier like 'my_strategy', got {key!r}"
            )
        taken = _entries[kind].get(key)
        if taken is not None and not _same_definition(taken, obj):
            raise RegistryError(
                f"{kind} {key!r} is already registered (by {_describe(taken)}). "
                f"HINT: pick another name, or unregister({kind!r}, {key!r}) first."
            )
        _entries[kind][key] = obj
        return obj

    return decorator


def unregister(kind: str, name: str) -> None:
    """Remove a registered plugin (mostly useful in tests and notebooks)."""
    _check_kind(kind)
    get(kind, name)  # raises a helpful error for unknown names
    del _entries[kind][name.lower()]


def get(kind: str, name: str, /) -> Any:
    """Return the class or function registered as ``kind``/``name``."""
    _check_kind(kind)
    _load(kind)
    key = name.lower() if isinstance(name, str) else name
    try:
        return _entries[kind][key]
    except (KeyError, TypeError):
        known = sorted(_entries[kind])
        raise RegistryError(
            f"unknown {kind} {name!r}; available: {', '.join(known) or '(none)'}."
            + close_matches(str(name), known)
        ) from None


def build(kind: str, name: str, /, **config: Any) -> Any:
    """Instantiate (or call) the plugin ``kind``/``name`` with ``config``.

    Arguments that the plugin does not accept raise :class:`ConfigError` naming them.
    """
    factory = get(kind, name)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have no introspectable signature
        return factory(**config)
    try:
        signature.bind(**config)
    except TypeError as exc:
        accepted = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        raise ConfigError(
            f"cannot build {kind} {name!r}: {exc}. Accepted arguments: "
            f"{', '.join(accepted) or '(none)'}.",
            field=name,
        ) from None
    return factory(**config)


def available(kind: str, pattern: str = "*") -> list[str]:
    """Sorted names registered under ``kind`` (built-ins and entry-point plugins).

    ``pattern`` filters with shell wildcards, e.g. ``available("space", "nb*")``.
    """
    _check_kind(kind)
    _load(kind)
    return sorted(n for n in _entries[kind] if fnmatch.fnmatchcase(n, pattern.lower()))


def name_of(kind: str, obj: Any) -> str | None:
    """The name under which ``obj`` (a class or function) is registered as ``kind``, or None."""
    _check_kind(kind)
    for name, entry in _entries[kind].items():
        if entry is obj:
            return name
    return None


def summary(kind: str, name: str) -> str:
    """The first line of a plugin's docstring (what ``nasforge list`` prints)."""
    doc = inspect.getdoc(get(kind, name)) or ""
    return doc.splitlines()[0] if doc else ""


def _load(kind: str) -> None:
    _load_builtins(kind)
    _load_entry_points()


def _load_builtins(kind: str) -> None:
    if kind not in _builtins_loaded:
        _builtins_loaded.add(kind)
        for module in _BUILTIN_MODULES[kind]:
            importlib.import_module(module)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except Exception:  # a broken third-party plugin must not break nasforge
            logger.warning(
                "could not load nasforge plugin %r (%s)",
                entry_point.name,
                entry_point.value,
                exc_info=True,
            )


def _same_definition(a: Any, b: Any) -> bool:
    return a is b or (
        getattr(a, "__module__", None) == getattr(b, "__module__", object())
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", object())
    )


def _describe(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
