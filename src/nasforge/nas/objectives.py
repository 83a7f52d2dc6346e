"""What a search optimises (objectives) and what a candidate must satisfy (constraints).

::

    objectives = Objectives.parse(["val_acc", "latency_ms"], ["max", "min"])
    objectives.score({"val_acc": 0.9, "latency_ms": 2.0})     # (0.9, -2.0): to maximise
    limits = [Constraint.parse("params <= 100_000"), Constraint.parse("latency_ms < 5")]

Strategies always maximise, so :meth:`Objectives.score` negates the objectives to minimise.
A constraint on a metric the evaluator can measure without training (``params``, ``macs``,
``flops``, ``latency_ms``: see ``measure(arch)`` on the evaluator) is checked before the
trial trains; others are checked on the trained trial's metrics.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nasforge.errors import ConfigError, close_matches

__all__ = ["Constraint", "Objectives", "check_metrics"]

_MODES = ("max", "min")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Objectives:
    """One or more metric names, each maximised or minimised."""

    names: tuple[str, ...]
    modes: tuple[str, ...]

    @classmethod
    def parse(cls, objective: str | Sequence[str], mode: str | Sequence[str]) -> Objectives:
        """Check ``objective`` (a name or a list of names) and ``mode`` (one mode for all, or
        one per objective)."""
        names = [objective] if isinstance(objective, str) else objective
        if not isinstance(names, Sequence) or not names:
            raise ConfigError.invalid(
                "objective", objective, "a metric name such as 'val_acc', or a list of them"
            )
        for name in names:
            if not isinstance(name, str) or not name:
                raise ConfigError.invalid("objective", name, "a metric name such as 'val_acc'")
        if len(set(names)) != len(names):
            raise ConfigError.invalid("objective", list(names), "distinct metric names")
        modes = [mode] * len(names) if isinstance(mode, str) else mode
        if not isinstance(modes, Sequence) or len(modes) != len(names):
            raise ConfigError.invalid(
                "mode", mode, f"'max', 'min' or a list of {len(names)} of them (one per objective)"
            )
        for m in modes:
            if m not in _MODES:
                raise ConfigError.invalid("mode", m, "'max' or 'min'")
        return cls(tuple(names), tuple(modes))

    @property
    def multi(self) -> bool:
        return len(self.names) > 1

    def score(self, metrics: Mapping[str, float]) -> float | tuple[float, ...] | None:
        """The value(s) to maximise, or None when any objective is NaN or infinite."""
        values = []
        for name, mode in zip(self.names, self.modes, strict=True):
            value = float(metrics[name])
            if not math.isfinite(value):
                return None
            values.append(value if mode == "max" else -value)
        return tuple(values) if self.multi else values[0]

    def missing(self, metrics: Mapping[str, Any]) -> list[str]:
        return [n for n in self.names if n not in metrics]

    def to_dict(self) -> dict[str, Any]:
        return {"objective": list(self.names), "mode": list(self.modes)}


@dataclass(frozen=True)
class Constraint:
    """``metric op bound`` with ``op`` one of ``<=``, ``<``, ``>=``, ``>``."""

    metric: str
    op: str
    bound: float

    #: Metrics an evaluator's ``measure(arch)`` gives without training ("flops" is an alias
    #: of "macs" in constraints: one multiply-accumulate counted as one operation).
    CHEAP = ("params", "macs", "flops", "latency_ms")

    @classmethod
    def parse(cls, spec: str | Constraint | Sequence[Any]) -> Constraint:
        """From ``"params <= 100_000"``, ``("params", "<=", 1e5)`` or a Constraint."""
        if isinstance(spec, Constraint):
            return spec
        expected = "'metric <= number' (or <, >=, >), e.g. 'params <= 100_000'"
        if isinstance(spec, str):
            match = _CONSTRAINT.match(spec)
            if not match:
                raise ConfigError.invalid("constraints", spec, expected)
            metric, op, text = match.groups()
        elif isinstance(spec, Sequence) and len(spec) == 3:
            metric, op, text = spec
        else:
            raise ConfigError.invalid("constraints", spec, expected)
        if not isinstance(metric, str) or op not in _OPERATORS:
            raise ConfigError.invalid("constraints", spec, expected)
        try:
            bound = float(text)  # "100_000" too: float() reads underscores between digits
        except (TypeError, ValueError):
            raise ConfigError.invalid("constraints", spec, expected) from None
        if isinstance(text, bool) or not math.isfinite(bound):
            raise ConfigError.invalid("constraints", spec, expected)
        return cls(metric, op, bound)

    @property
    def cheap(self) -> bool:
        """Whether the metric is known before training."""
        return self.metric in self.CHEAP

    def holds(self, metrics: Mapping[str, float]) -> bool | None:
        """True/False, or None when ``metrics`` lacks the metric."""
        name = self.source(metrics)
        if name not in metrics:
            return None
        return _OPERATORS[self.op](float(metrics[name]), self.bound)

    def source(self, metrics: Collection[str]) -> str:
        """The metric this constraint reads among ``metrics`` (``flops`` reads ``macs``)."""
        return "macs" if self.metric == "flops" and "flops" not in metrics else self.metric

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_constraints(specs: Any) -> tuple[Constraint, ...]:
    """A tuple of constraints from None, one spec, or a list of specs."""
    if specs is None:
        return ()
    if isinstance(specs, str | Constraint):
        specs = [specs]
    if not isinstance(specs, Sequence):
        raise ConfigError.invalid(
            "constraints", specs, "a list such as ['params <= 100_000', 'latency_ms <= 5']"
        )
    return tuple(Constraint.parse(s) for s in specs)


def violations(constraints: Sequence[Constraint], metrics: Mapping[str, float]) -> list[str]:
    """The constraints ``metrics`` break, as text (unknown metrics are not violations)."""
    return [str(c) for c in constraints if c.holds(metrics) is False]


def check_metrics(
    metrics: Collection[str] | None,
    objectives: Objectives,
    constraints: Sequence[Constraint],
) -> None:
    """Refuse, before anything trains, objectives and constraints on metrics that the
    evaluator does not produce (``metrics``: the names it returns; None: not known)."""
    if metrics is None:
        return
    known = sorted(metrics)
    for name in objectives.names:
        if name not in metrics:
            raise ConfigError.invalid(
                "objective",
                name,
                f"one of the evaluator's metrics ({', '.join(known)})",
                close_matches(name, known).strip() or None,
            )
    for constraint in constraints:
        if constraint.source(metrics) not in metrics:
            raise ConfigError.invalid(
                "constraints",
                str(constraint),
                f"a constraint on one of the evaluator's metrics ({', '.join(known)})",
                close_matches(constraint.metric, known).strip() or None,
            )
