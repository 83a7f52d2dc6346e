"""Parameter primitives of a search space: choices, integer and float ranges, fixed values.

Each parameter is a small frozen value object that validates itself at construction and
knows how to sample, mutate, list its neighbours, enumerate a grid and encode a value as
numbers. Conditional parameters carry ``when={"parent": (allowed values, ...)}``: they are
active only while every named parent is active and takes one of the allowed values.

Example::

    from nasforge.space import Choice, FloatRange, IntRange

    depth = IntRange("depth", 1, 4)
    act = Choice("activation", ["relu", "gelu"])
    drop = FloatRange("dropout", 0.0, 0.5)
    width3 = IntRange("width_3", 16, 256, log=True, when={"depth": [3, 4]})
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nasforge.errors import ConfigError
from nasforge.validation import check_bool, check_int, check_number, is_int, is_number

__all__ = ["Choice", "Fixed", "FloatRange", "IntRange", "Param"]

Value = Any
_FORBIDDEN = ("|", "=", "~")


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name or any(c in name for c in _FORBIDDEN):
        raise ConfigError.invalid(
            "param.name",
            name,
            "a non-empty string without '|', '=' or '~'",
            hint="use names like 'depth' or 'width_1'",
        )


def _freeze_when(name: str, when: Mapping[str, Sequence[Value]] | None) -> tuple:
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise ConfigError.invalid(
            f"{name}.when",
            when,
            "a non-empty mapping of parent name -> allowed values",
            hint='e.g. when={"depth": [3, 4]}',
        )
    frozen = []
    for parent, values in when.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            values = (values,)
        if len(values) == 0:
            raise ConfigError.invalid(
                f"{name}.when.{parent}", values, "at least one allowed parent value"
            )
        frozen.append((str(parent), tuple(values)))
    return tuple(frozen)


@dataclass(frozen=True)
class Param:
    """Base class of every parameter: a ``name`` and an optional activation condition."""

    name: str
    when: tuple = field(default=(), kw_only=True)

    kind: ClassVar[str] = "param"

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.when != ():  # () is the frozen form of "always active"
            object.__setattr__(self, "when", _freeze_when(self.name, self.when))

    # --- what every parameter implements ----------------------------------------------------
    @property
    def size(self) -> int | None:
        """Number of distinct values, or ``None`` when infinite (float ranges)."""
        raise NotImplementedError

    @property
    def default(self) -> Value:
        """The value a newly activated parameter takes where no randomness is wanted."""
        raise NotImplementedError

    @property
    def width(self) -> int:
        """Length of :meth:`encode`'s output."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Value:
        raise NotImplementedError

    def contains(self, value: Value) -> bool:
        raise NotImplementedError

    def neighbors(self, value: Value) -> list[Value]:
        """Values one step away from ``value`` (never ``value`` itself)."""
        raise NotImplementedError

    def grid(self, resolution: int) -> list[Value]:
        """The values a grid search visits (every value of a finite parameter)."""
        raise NotImplementedError

    def encode(self, value: Value) -> list[float]:
        raise NotImplementedError

    def mutate(self, value: Value, rng: np.random.Generator) -> Value:
        """A different value drawn near ``value`` (uniformly among the others for choices)."""
        options = self.neighbors(value)
        return value if not options else options[int(rng.integers(len(options)))]

    def format(self, value: Value) -> str:
        """The text of ``value`` inside an architecture key."""
        return repr(value) if isinstance(value, float) else str(value)

    def parse(self, text: str) -> Value:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.kind}
        data.update(self._fields())
        if self.when:
            data["when"] = {parent: list(values) for parent, values in self.when}
        return data

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def active(self, values: Mapping[str, Value]) -> bool:
        """Whether this parameter is active given the values chosen for earlier parameters."""
        return all(p in values and values[p] in allowed for p, allowed in self.when)

    def renamed(self, prefix: str) -> Param:
        """A copy whose name and parent names carry ``prefix`` (used to compose spaces)."""
        fields = self._fields()
        when = {f"{prefix}{p}": list(v) for p, v in self.when} or None
        return type(self)(f"{prefix}{self.name}", **fields, when=when)


def _check_value(field_name: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError.invalid(field_name, value, "a finite number")


@dataclass(frozen=True)
class Choice(Param):
    """A categorical parameter: one of ``choices`` (strings, numbers, booleans or None)."""

    choices: tuple = ()
    kind: ClassVar[str] = "choice"

    def __post_init__(self) -> None:
        super().__post_init__()
        choices = self.choices
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise ConfigError.invalid(f"{self.name}.choices", choices, "a list of values")
        choices = tuple(choices)
        if not choices:
            raise ConfigError.invalid(f"{self.name}.choices", list(choices), "a non-empty list")
        texts = [self.format(c) for c in choices]
        for c in choices:
            if c is not None and not isinstance(c, (str, int, float, bool)):
                raise ConfigError.invalid(
                    f"{self.name}.choices", c, "strings, numbers, booleans or None"
                )
            _check_value(f"{self.name}.choices", c)
        if len(set(texts)) != len(texts):
            raise ConfigError.invalid(
                f"{self.name}.choices", list(choices), "distinct values", hint="remove duplicates"
            )
        bad = [t for t in texts if any(c in t for c in _FORBIDDEN)]
        if bad:
            raise ConfigError.invalid(
                f"{self.name}.choices", bad[0], "values whose text has no '|', '=' or '~'"
            )
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(texts)})

    def index(self, value: Value) -> int:
        return self._index[self.format(value)]  # type: ignore[attr-defined]

    @property
    def size(self) -> int:
        return len(self.choices)

    @property
    def default(self) -> Value:
        return self.choices[0]

    @property
    def width(self) -> int:
        return len(self.choices)

    def sample(self, rng: np.random.Generator) -> Value:
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, value: Value) -> bool:
        try:
            return bool(self.choices[self.index(value)] == value)
        except (KeyError, TypeError):
            return False

    def neighbors(self, value: Value) -> list[Value]:
        i = self.index(value)
        return [c for j, c in enumerate(self.choices) if j != i]

    def grid(self, resolution: int) -> list[Value]:
        return list(self.choices)

    def encode(self, value: Value) -> list[float]:
        out = [0.0] * len(self.choices)
        out[self.index(value)] = 1.0
        return out

    def parse(self, text: str) -> Value:
        try:
            return self.choices[self._index[text]]  # type: ignore[attr-defined]
        except KeyError:
            raise ConfigError.invalid(
                self.name, text, f"one of {[self.format(c) for c in self.choices]}"
            ) from None

    def _fields(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}


@dataclass(frozen=True)
class IntRange(Param):
    """An integer in ``[low, high]`` (both included) on a grid of ``step``; ``log`` spaces the
    samples and encoding logarithmically (``low`` must then be >= 1)."""

    low: int = 0
    high: int = 0
    step: int = field(default=1, kw_only=True)
    log: bool = field(default=False, kw_only=True)
    kind: ClassVar[str] = "int"

    def __post_init__(self) -> None:
        super().__post_init__()
        for attr in ("low", "high", "step"):
            object.__setattr__(self, attr, check_int(getattr(self, attr), f"{self.name}.{attr}"))
        check_bool(self.log, f"{self.name}.log")
        if self.low > self.high:
            raise ConfigError(
                f"{self.name}: low <= high must hold, but got (low={self.low}, high={self.high})",
                field=f"{self.name}.low",
            )
        if self.step < 1:
            raise ConfigError.invalid(f"{self.name}.step", self.step, "an integer >= 1")
        if (self.high - self.low) % self.step:
            raise ConfigError.invalid(
                f"{self.name}.high",
                self.high,
                f"low + a multiple of step={self.step} (low={self.low})",
            )
        if self.log and (self.low < 1 or self.step != 1):
            raise ConfigError.invalid(
                f"{self.name}.log", self.log, "False unless low >= 1 and step == 1"
            )

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    @property
    def default(self) -> Value:
        return self.low

    @property
    def width(self) -> int:
        return 1

    def _unit(self, value: float) -> float:
        return _unit_position(value, self.low, self.high, self.log)

    def _from_unit(self, u: float) -> int:
        if self.log:
            raw = self.low * (self.high / self.low) ** u
        else:
            raw = self.low + u * (self.high - self.low)
        k = round((raw - self.low) / self.step)
        return int(min(self.high, max(self.low, self.low + k * self.step)))

    def sample(self, rng: np.random.Generator) -> Value:
        if self.log:
            return self._from_unit(float(rng.random()))
        return self.low + self.step * int(rng.integers(self.size))

    def contains(self, value: Value) -> bool:
        return (
            is_int(value) and self.low <= value <= self.high and (value - self.low) % self.step == 0
        )

    def neighbors(self, value: Value) -> list[Value]:
        if self.log:  # one step = the next value up or down on a ~10 % multiplicative grid
            up = max(value + 1, round(value * 1.25))
            down = min(value - 1, round(value / 1.25))
            return [v for v in (down, up) if self.low <= v <= self.high]
        return [v for v in (value - self.step, value + self.step) if self.low <= v <= self.high]

    def mutate(self, value: Value, rng: np.random.Generator) -> Value:
        if self.size <= 1:
            return value
        for _ in range(8):  # a Gaussian step of 1/4 range in unit space, rounded to the grid
            u = min(1.0, max(0.0, self._unit(value) + 0.25 * float(rng.standard_normal())))
            new = self._from_unit(u)
            if new != value:
                return new
        return super().mutate(value, rng)

    def grid(self, resolution: int) -> list[Value]:
        if self.size <= resolution:
            return list(range(self.low, self.high + 1, self.step))
        return sorted({self._from_unit(u) for u in np.linspace(0.0, 1.0, resolution)})

    def encode(self, value: Value) -> list[float]:
        return [self._unit(value)]

    def parse(self, text: str) -> Value:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError.invalid(self.name, text, "an integer") from None
        return value

    def _fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "step": self.step, "log": self.log}


@dataclass(frozen=True)
class FloatRange(Param):
    """A float in ``[low, high]``, uniform or (``log=True``, ``low > 0``) log-uniform."""

    low: float = 0.0
    high: float = 1.0
    log: bool = field(default=False, kw_only=True)
    kind: ClassVar[str] = "float"

    #: Fraction of the (log-)range that one mutation/neighbour step moves.
    STEP: ClassVar[float] = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        for attr in ("low", "high"):
            object.__setattr__(self, attr, check_number(getattr(self, attr), f"{self.name}.{attr}"))
        check_bool(self.log, f"{self.name}.log")
        if not self.low < self.high:
            raise ConfigError(
                f"{self.name}: low < high must hold, but got (low={self.low}, high={self.high}). "
                "HINT: use Fixed for a constant",
                field=f"{self.name}.low",
            )
        if self.log and self.low <= 0:
            raise ConfigError.invalid(
                f"{self.name}.low", self.low, "> 0 when log=True", hint="or set log=False"
            )

    @property
    def size(self) -> None:
        return None

    @property
    def default(self) -> Value:
        return self.low

    @property
    def width(self) -> int:
        return 1

    def _unit(self, value: float) -> float:
        return _unit_position(value, self.low, self.high, self.log)

    def _from_unit(self, u: float) -> float:
        u = min(1.0, max(0.0, u))
        if self.log:
            return float(min(self.high, max(self.low, self.low * (self.high / self.low) ** u)))
        return float(min(self.high, max(self.low, self.low + u * (self.high - self.low))))

    def sample(self, rng: np.random.Generator) -> Value:
        return self._from_unit(float(rng.random()))

    def contains(self, value: Value) -> bool:
        return is_number(value) and self.low <= value <= self.high

    def neighbors(self, value: Value) -> list[Value]:
        u = self._unit(value)
        out = []
        for v in (u - self.STEP, u + self.STEP):
            if -1e-12 <= v <= 1 + 1e-12:
                out.append(self._from_unit(v))
        return [v for v in out if v != value]

    def mutate(self, value: Value, rng: np.random.Generator) -> Value:
        u = self._unit(value) + 2 * self.STEP * float(rng.standard_normal())
        if u < 0 or u > 1:  # reflect at the bounds
            u = -u if u < 0 else 2 - u
        return self._from_unit(u)

    def grid(self, resolution: int) -> list[Value]:
        return [self._from_unit(u) for u in np.linspace(0.0, 1.0, resolution)]

    def encode(self, value: Value) -> list[float]:
        return [self._unit(value)]

    def parse(self, text: str) -> Value:
        try:
            return float(text)
        except ValueError:
            raise ConfigError.invalid(self.name, text, "a number") from None

    def _fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Fixed(Param):
    """A constant that is part of every architecture (or of those where it is active)."""

    value: Any = None
    kind: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.value is not None and not isinstance(self.value, (str, int, float, bool)):
            raise ConfigError.invalid(
                f"{self.name}.value", self.value, "a string, number, boolean or None"
            )
        _check_value(f"{self.name}.value", self.value)
        text = self.format(self.value)
        if any(c in text for c in _FORBIDDEN):
            raise ConfigError.invalid(
                f"{self.name}.value", text, "a value whose text has no '|', '=' or '~'"
            )

    @property
    def size(self) -> int:
        return 1

    @property
    def default(self) -> Value:
        return self.value

    @property
    def width(self) -> int:
        return 0

    def sample(self, rng: np.random.Generator) -> Value:
        return self.value

    def contains(self, value: Value) -> bool:
        return value == self.value and type(value) is type(self.value)

    def neighbors(self, value: Value) -> list[Value]:
        return []

    def grid(self, resolution: int) -> list[Value]:
        return [self.value]

    def encode(self, value: Value) -> list[float]:
        return []

    def parse(self, text: str) -> Value:
        if text != self.format(self.value):
            raise ConfigError.invalid(self.name, text, self.format(self.value))
        return self.value

    def _fields(self) -> dict[str, Any]:
        return {"value": self.value}


PARAM_TYPES: dict[str, type[Param]] = {
    cls.kind: cls for cls in (Choice, IntRange, FloatRange, Fixed)
}


def _unit_position(value: float, low: float, high: float, log: bool) -> float:
    """Where ``value`` lies in ``[low, high]`` as a fraction (on a log scale if ``log``)."""
    if high == low:
        return 0.0
    if log:
        return math.log(value / low) / math.log(high / low)
    return (value - low) / (high - low)
