"""The compression report: accuracy, size and speed before and after, step by step."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CompressionReport", "jsonable"]

# metric -> (label, higher is better)
_METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("accuracy", True),
    "params": ("parameters", False),
    "macs": ("MACs / sample", False),
    "size_bytes": ("size on disk (bytes)", False),
}


def jsonable(value: Any) -> Any:
    """``value`` with tensors, numpy numbers, tuples and paths turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return jsonable(value.item())
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


@dataclass
class CompressionReport:
    """What a :class:`~nasforge.compress.Pipeline` did, with the numbers side by side.

    ``before`` and ``after`` hold ``accuracy`` (when evaluation data exists), ``params``,
    ``macs`` (per sample), ``size_bytes`` (the saved state_dict) and ``latency_ms_b<N>``
    (median CPU latency at batch N). ``steps`` has one entry per compressor: its ``name``,
    ``config`` (repr), ``seconds``, the same cheap metrics after the step, and the
    compressor's own ``stats`` (and its latencies, when timed). ``settings`` records how
    latency was measured; ``warnings`` lists the steps that made the model slower.
    """

    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def ratios(self) -> dict[str, float]:
        """Compression and speedup factors (before / after) and the accuracy change."""
        out: dict[str, float] = {}
        for key in ("params", "macs", "size_bytes"):
            if self.after.get(key):
                out[f"{key}_reduction"] = self.before[key] / self.after[key]
        for key in sorted(k for k in self.before if k.startswith("latency_ms_")):
            if self.after.get(key):
                out[f"speedup_{key.removeprefix('latency_ms_')}"] = (
                    self.before[key] / self.after[key]
                )
        if "accuracy" in self.before and "accuracy" in self.after:
            out["accuracy_change"] = self.after["accuracy"] - self.before["accuracy"]
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of everything in the report."""
        return jsonable(
            {
                "before": self.before,
                "after": self.after,
                "ratios": self.ratios(),
                "steps": self.steps,
                "settings": self.settings,
                "warnings": self.warnings,
            }
        )

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as JSON text; written to ``path`` too when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def table(self) -> str:
        """A plain-text table: metric, before, after, factor."""
        rows = [("metric", "before", "after", "before/after")]
        metrics = dict(_METRICS)
        for key in sorted(k for k in self.before if k.startswith("latency_ms_")):
            metrics[key] = (f"latency batch {key.removeprefix('latency_ms_b')} (ms)", False)
        for key, (label, higher_better) in metrics.items():
            if key not in self.before or key not in self.after:
                continue
            b, a = self.before[key], self.after[key]
            ratio = f"{b / a:.2f}x" if a else "-"
            factor = f"{a - b:+.4f}" if higher_better else ratio
            rows.append((label, _fmt(b), _fmt(a), factor))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            "  ".join(
                [
                    r[0].ljust(widths[0]),
                    *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)),
                ]
            )
            for r in rows
        ]
        steps = " -> ".join(s["name"] for s in self.steps) or "(no steps)"
        notes = [f"warning: {w}" for w in self.warnings]
        return "\n".join([f"compression: {steps}", *lines, *notes])

    def __str__(self) -> str:
        return self.table()


def _fmt(value: float) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return f"{int(value):,}"
