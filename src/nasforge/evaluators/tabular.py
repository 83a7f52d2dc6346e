"""Tabular benchmarks: metrics looked up in a table instead of trained.

:class:`TabularBenchmark` (registered as evaluator ``tabular``) looks the metrics up in a
table keyed by :attr:`Arch.key`, e.g. the NAS-Bench-201 export::

    bench = nf.TabularBenchmark.from_csv("nb201_cifar10.csv", key="arch")
    bench.evaluate(arch)          # {'index': 1.0, 'val_acc': 82.834, 'test_acc': 88.22}
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasforge.errors import ConfigError, UnknownArchError
from nasforge.nas.evaluator import Evaluator
from nasforge.registry import register
from nasforge.space.base import Arch
from nasforge.validation import check_str, is_number

__all__ = ["TabularBenchmark"]


@register("evaluator", "tabular")
class TabularBenchmark(Evaluator):
    """Metrics looked up in a table: ``{arch key: {metric: value}}``; O(1) per query.

    Example::

        bench = TabularBenchmark({"a": {"acc": 0.9}, "b": {"acc": 0.8}})
        bench.evaluate(space.from_key("a"))["acc"]
    """

    def __init__(self, table: Mapping[str, Mapping[str, float]], *, name: str = "table") -> None:
        if not isinstance(table, Mapping) or not table:
            raise ConfigError.invalid(
                "table", type(table).__name__, "a non-empty mapping key -> metrics"
            )
        self._table: dict[str, dict[str, float]] = {}
        for key, row in table.items():
            if not isinstance(row, Mapping) or not all(is_number(v) for v in row.values()):
                raise ConfigError.invalid(
                    f"table[{key!r}]", row, "a mapping of metric name -> finite number"
                )
            self._table[str(key)] = {str(m): float(v) for m, v in row.items()}
        self.name = check_str(name, "name")
        self.metrics: tuple[str, ...] = tuple(next(iter(self._table.values())))

    @classmethod
    def from_csv(cls, path: str | Path, *, key: str = "arch") -> TabularBenchmark:
        """Read a CSV with one row per arch; the ``key`` column holds :attr:`Arch.key` and
        every other column whose values all parse as numbers becomes a metric."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError.invalid("path", str(path), "an existing CSV file")
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            if key not in columns:
                raise ConfigError.invalid("key", key, f"a column of {path.name}: {columns}")
            rows = list(reader)
        if not rows:
            raise ConfigError.invalid("path", str(path), "a CSV with at least one data row")
        numeric = [c for c in columns if c != key and all(_is_number(r[c]) for r in rows)]
        table: dict[str, dict[str, float]] = {}
        for r in rows:
            if r[key] in table:
                raise ConfigError.invalid(f"{path.name}:{key}", r[key], "unique keys")
            table[r[key]] = {c: float(r[c]) for c in numeric}
        return cls(table, name=path.stem)

    def evaluate(self, arch: Arch | str, budget: float | None = None) -> dict[str, float]:
        """The row of ``arch`` (a copy); ``budget`` is ignored (one fidelity)."""
        k = arch if isinstance(arch, str) else arch.key
        try:
            return dict(self._table[k])
        except KeyError:
            raise UnknownArchError(
                f"architecture {k!r} is not in table {self.name!r} ({len(self._table)} rows). "
                "HINT: check that the space's keys match the table's key column"
            ) from None

    def identity(self) -> dict[str, Any]:
        """What identifies the table (recorded in a search's journal)."""
        return {"evaluator": "tabular", "name": self.name, "rows": len(self)}

    def __contains__(self, arch: object) -> bool:
        k = arch if isinstance(arch, str) else getattr(arch, "key", None)
        return k in self._table

    def __len__(self) -> int:
        return len(self._table)

    def keys(self) -> list[str]:
        """The architecture keys of every row, in table order."""
        return list(self._table)

    def __repr__(self) -> str:
        return (
            f"TabularBenchmark(name={self.name!r}, rows={len(self)}, metrics={list(self.metrics)})"
        )


def _is_number(text: Any) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False
