"""The one exception hierarchy of nasforge.

Every error a user can cause derives from :class:`NasforgeError`, and says what was
expected, what came, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CheckpointError",
    "ConfigError",
    "JournalError",
    "MissingDependencyError",
    "NasforgeError",
    "PruningWarning",
    "RegistryError",
    "SlowdownWarning",
    "StrategyStateError",
    "TooManyFailuresError",
    "TrainingDivergedError",
    "UnknownArchError",
    "UnsupportedModelError",
    "close_matches",
]


class NasforgeError(Exception):
    """Base class of every error raised by nasforge."""


class ConfigError(NasforgeError, ValueError):
    """A user-supplied value (argument, config field, space definition) is invalid.

    ``field`` names the offending field, e.g. ``"trainer.epochs"``.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @classmethod
    def invalid(cls, field: str, value: Any, expected: str, hint: str | None = None) -> ConfigError:
        """Build the standard message: ``field`` must be ``expected``, but got ``value``."""
        message = f"{field} must be {expected}, but got {value!r}"
        if hint:
            message += f". HINT: {hint}"
        return cls(message, field=field)

    def within(self, section: str) -> ConfigError:
        """This error as raised inside config section ``section``: ``"lr must be ..."``
        becomes ``"training.lr must be ..."`` (field ``training.lr``)."""
        message, field = str(self), self.field
        if field and message.startswith(field):
            return ConfigError(f"{section}.{message}", field=f"{section}.{field}")
        return ConfigError(
            f"{section}: {message}", field=f"{section}.{field}" if field else section
        )


class RegistryError(NasforgeError, LookupError):
    """An unknown plugin name, an unknown kind, or a name registered twice."""

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(NasforgeError, ImportError):
    """An optional dependency is not installed; the message gives the install command."""

    def __init__(self, package: str, *, extra: str | None = None, purpose: str = "") -> None:
        target = f'"nasforge[{extra}]"' if extra else package
        what = f" {purpose}" if purpose else ""
        super().__init__(
            f"{package} is required{what} but is not installed. HINT: pip install {target}"
        )
        self.package = package


class CheckpointError(NasforgeError):
    """A checkpoint file is missing, truncated or not a nasforge checkpoint."""


class JournalError(NasforgeError):
    """A search journal is missing, damaged, or records a different search."""


class TooManyFailuresError(NasforgeError):
    """A search stopped because too many trials in a row failed.

    ``result`` holds the :class:`~nasforge.SearchResult` up to that point.
    """

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class TrainingDivergedError(NasforgeError):
    """The training loss became NaN or infinite."""


class UnsupportedModelError(NasforgeError):
    """A model (or one of its layers, which the message names) cannot be handled.

    ``layer`` is the qualified name of the offending module when one is known.
    """

    def __init__(self, message: str, *, layer: str | None = None) -> None:
        super().__init__(message)
        self.layer = layer


class StrategyStateError(NasforgeError):
    """A strategy state dict that belongs to another strategy or space."""


class SlowdownWarning(UserWarning):
    """A compression step made the model slower on the CPU (e.g. int8 on a model too small
    for quantized kernels to pay off); the compression report lists it too."""


class PruningWarning(UserWarning):
    """Structured pruning left layers whole that it did not understand (the warning names
    them and why), or found nothing to prune at all."""


class UnknownArchError(NasforgeError, KeyError):
    """A tabular benchmark has no row for the requested architecture key."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return a ``" Did you mean ...?"`` suffix, or ``""`` when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"
