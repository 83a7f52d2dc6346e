"""The one place where option values are checked.

Every plugin, option set and config loader checks its values with these functions, so the
rules are the same everywhere: booleans are never integers, strings are never numbers,
numbers are finite, names are matched case-insensitively, and every refusal is a
:class:`~nasforge.ConfigError` whose message names the field, what was expected and what
came::

    check_int(0, "epochs", low=1)        # ConfigError: epochs must be a positive integer, but got 0
    check_choice("Cosine", "lr_schedule", ("none", "cosine"))   # 'cosine'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from nasforge.errors import ConfigError, close_matches

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_int",
    "check_int_list",
    "check_number",
    "check_probability",
    "check_sequence",
    "check_str",
    "check_str_list",
    "is_int",
    "is_number",
]

T = TypeVar("T")


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy); booleans are not integers here."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number; booleans and strings are not numbers."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and type(value).__name__ != "bool_"  # numpy.bool_
        and math.isfinite(value)
    )


def _bounds_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def _in_bounds(
    value: float, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    return not (high is not None and (value >= high if high_open else value > high))


def check_int(
    value: Any,
    field: str,
    *,
    low: int | None = None,
    high: int | None = None,
    optional: bool = False,
    hint: str | None = None,
) -> Any:
    """``value`` as an ``int`` in ``[low, high]`` (None allowed with ``optional``)."""
    if value is None and optional:
        return None
    if not is_int(value) or not _in_bounds(value, low, high, False, False):
        if low == 1 and high is None:
            expected = "a positive integer"
        elif low == 0 and high is None:
            expected = "a non-negative integer"
        else:
            expected = "an integer" + _bounds_text(low, high, False, False)
        raise ConfigError.invalid(field, value, expected + (" or None" if optional else ""), hint)
    return int(value)


def check_number(
    value: Any,
    field: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
    hint: str | None = None,
) -> Any:
    """``value`` as a finite ``float`` within the bounds (open ends with ``*_open``)."""
    if value is None and optional:
        return None
    if not is_number(value) or not _in_bounds(float(value), low, high, low_open, high_open):
        if low == 0 and low_open and high is None:
            expected = "a positive number"
        else:
            expected = "a number" + _bounds_text(low, high, low_open, high_open)
        raise ConfigError.invalid(field, value, expected + (" or None" if optional else ""), hint)
    return float(value)


def check_probability(value: Any, field: str, *, optional: bool = False) -> Any:
    """``value`` as a float in ``[0, 1]``."""
    if value is None and optional:
        return None
    if not is_number(value) or not 0 <= value <= 1:
        expected = "a probability in [0, 1]" + (" or None" if optional else "")
        raise ConfigError.invalid(field, value, expected)
    return float(value)


def check_bool(value: Any, field: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ConfigError.invalid(field, value, "True or False")
    return value


def check_str(value: Any, field: str, *, optional: bool = False) -> Any:
    """``value`` if it is a non-empty string."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        expected = "a non-empty string" + (" or None" if optional else "")
        raise ConfigError.invalid(field, value, expected)
    return value


def check_choice(
    value: Any,
    field: str,
    choices: Collection[str],
    *,
    optional: bool = False,
    hint: str | None = None,
) -> Any:
    """``value`` matched case-insensitively against ``choices``; returns the choice itself."""
    if value is None and optional:
        return None
    if isinstance(value, str):
        for choice in choices:
            if choice.lower() == value.lower():
                return choice
    suggestion = close_matches(str(value), choices).strip() if isinstance(value, str) else ""
    raise ConfigError.invalid(
        field,
        value,
        f"one of {', '.join(repr(c) for c in choices)}" + (" or None" if optional else ""),
        hint or suggestion or None,
    )


def check_callable(value: Any, field: str, expected: str, *, optional: bool = False) -> Any:
    """``value`` if it is callable and not a string or class-less constant."""
    if value is None and optional:
        return None
    if isinstance(value, str | bytes) or not callable(value):
        raise ConfigError.invalid(field, value, expected)
    return value


def check_sequence(
    value: Any,
    field: str,
    item: Callable[[Any, str], T],
    *,
    min_length: int = 1,
    distinct: bool = False,
    expected: str | None = None,
) -> list[T]:
    """``value`` as a list (from a list or tuple), each element checked by ``item(value,
    f"{field}[i]")``; ``distinct`` refuses repeated elements."""
    what = expected or "a list"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError.invalid(field, value, what)
    if len(value) < min_length:
        raise ConfigError.invalid(field, value, f"{what} of at least {min_length} element(s)")
    checked = [item(v, f"{field}[{i}]") for i, v in enumerate(value)]
    if distinct and len({repr(v) for v in checked}) != len(checked):
        raise ConfigError.invalid(field, value, f"{what} without repeated elements")
    return checked


def check_int_list(
    value: Any, field: str, *, low: int | None = None, distinct: bool = False
) -> list[int]:
    """A non-empty list (or tuple) of integers >= ``low``."""
    what = "a list of " + ("distinct " if distinct else "")
    what += "positive integers" if low == 1 else "integers" + _bounds_text(low, None, False, False)
    return check_sequence(
        value, field, lambda v, f: check_int(v, f, low=low), distinct=distinct, expected=what
    )


def check_str_list(value: Any, field: str, *, min_length: int = 0) -> list[str]:
    """A list (or tuple) of non-empty strings, e.g. layer names; a lone string is refused."""
    return check_sequence(
        value, field, check_str, min_length=min_length, expected="a list of names"
    )


def check_options(value: Any, field: str, reserved: Sequence[str] = ()) -> dict[str, Any]:
    """Keyword options for a callable (None: none) as a dict; ``reserved`` names are set by
    the caller and refused here."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError.invalid(field, value, "a mapping of option name -> value")
    for name in reserved:
        if name in value:
            raise ConfigError.invalid(
                f"{field}.{name}", value[name], "not given here: it comes from the data"
            )
    return dict(value)
