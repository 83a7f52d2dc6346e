"""Reading YAML configs: the checks every ``nasforge`` config section shares.

Configs are read with ``yaml.safe_load`` (no Python objects from YAML), and every error is a
:class:`~nasforge.ConfigError` naming the field (``data.options``, ``compressors[1].name``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nasforge import registry
from nasforge.errors import ConfigError, NasforgeError, close_matches

__all__ = ["call_user", "check_fields", "check_registered", "kwargs", "named", "read_yaml"]


def read_yaml(source: str | os.PathLike[str] | dict[str, Any]) -> tuple[Any, Path]:
    """The parsed config and the directory relative paths in it are resolved against
    (the file's directory; the working directory for an already parsed dict)."""
    if isinstance(source, dict):
        return source, Path.cwd()
    import yaml

    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist", field="config")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{str(path)!r} is not valid YAML: {exc}", field="config") from None
    return raw, path.resolve().parent


def check_fields(value: Any, name: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """``value`` as a mapping whose keys are all in ``fields`` (None gives ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError.invalid(name, value, "a mapping")
    for key in value:
        if key not in fields:
            raise ConfigError.invalid(
                f"{name}.{key}",
                value[key],
                f"one of the fields {', '.join(fields)}",
                ("unknown field." + close_matches(str(key), fields)).strip(),
            )
    return value


def named(section: Any, name: str) -> tuple[str, dict[str, Any]]:
    """A section written as ``"name"`` or ``{name: ..., ...}``: its name and mapping."""
    if isinstance(section, str):
        return section, {}
    value = section.get("name") if isinstance(section, dict) else section
    if not isinstance(value, str):
        raise ConfigError.invalid(f"{name}.name", value, "a name string")
    return value, section


def check_registered(kind: str, name: str, field: str, also: str = "") -> None:
    """Refuse a ``name`` that is not a registered ``kind`` plugin, naming ``field`` and
    listing the registered ones (``also`` adds other accepted forms)."""
    known = registry.available(kind)
    if name.lower() not in known:
        raise ConfigError.invalid(
            field,
            name,
            f"one of {', '.join(known)}" + (f" {also}" if also else ""),
            close_matches(name, known).strip() or None,
        )


def kwargs(value: Any, name: str) -> dict[str, Any]:
    """Keyword arguments: a mapping, or None for none."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError.invalid(name, value, "a mapping of keyword arguments")
    return dict(value)


def call_user(
    function: Callable[..., Any],
    options: Mapping[str, Any],
    field: str,
    *,
    name: str | None = None,
) -> Any:
    """``function(**options)`` for a callable the config names (a model constructor, a
    dataset function; ``name`` is how the config names it): whatever it raises becomes a
    :class:`ConfigError` naming ``field``, so a bad config ends in one clear line rather
    than a traceback."""
    try:
        return function(**options)
    except NasforgeError as exc:
        if isinstance(exc, ConfigError) and (exc.field or "").startswith(field):
            raise
        raise ConfigError(f"{field}: {exc}", field=field) from exc
    except Exception as exc:
        name = name or getattr(function, "__qualname__", repr(function))
        raise ConfigError(
            f"{field}: {name}(**{dict(options)!r}) raised {type(exc).__name__}: {exc}",
            field=field,
        ) from exc
