"""Trial records and the :class:`SearchResult` of a search.

A :class:`Trial` is what the search loop (and a journal) stores per query; it is plain
data and round-trips through :meth:`Trial.to_dict`.
"""

from __future__ import annotations

import csv
import enum
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError, MissingDependencyError
from nasforge.space.base import Arch, Space
from nasforge.validation import check_int

if TYPE_CHECKING:
    from nasforge.ensemble import Ensemble

__all__ = ["SearchResult", "Trial", "TrialStatus"]

logger = logging.getLogger(__name__)


class TrialStatus(enum.Enum):
    """Lifecycle of a trial."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INFEASIBLE = "infeasible"
    INTERRUPTED = "interrupted"


@dataclass
class Trial:
    """One query: the arch, its metrics and status, timing, and the error if it failed.

    ``budget`` is the fidelity (e.g. epochs) its metrics were measured at, when a
    multi-fidelity scheduler chose it (None: the evaluator's default); ``duration`` adds up
    every budget it ran at.
    """

    number: int
    arch: Arch
    status: TrialStatus = TrialStatus.RUNNING
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    started: float = 0.0
    duration: float = 0.0
    budget: float | None = None

    @property
    def key(self) -> str:
        return self.arch.key

    @property
    def finished(self) -> bool:
        return self.status is TrialStatus.FINISHED

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "key": self.key,
            "arch": self.arch.to_dict(),
            "status": self.status.value,
            "metrics": dict(self.metrics),
            "error": self.error,
            "started": self.started,
            "duration": self.duration,
            "budget": self.budget,
        }


@dataclass
class SearchResult:
    """What :func:`nasforge.search` returns: the trials in query order and the best one.

    ``objectives`` and ``modes`` list what the search optimised; ``objective`` and ``mode``
    (the first of them) say how :attr:`best` is judged. With several objectives,
    :meth:`pareto_front` gives the trade-offs.
    """

    trials: list[Trial]
    objective: str
    mode: str = "max"
    strategy: str = ""
    seed: int = 0
    duration: float = 0.0
    objectives: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    #: The space searched and the evaluator that scored it (not part of the saved data).
    space: Space | None = field(default=None, repr=False, compare=False)
    evaluator: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.objectives = tuple(self.objectives) or (self.objective,)
        self.modes = tuple(self.modes) or (self.mode,) * len(self.objectives)

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.mode == "max" else a < b

    @property
    def finished(self) -> list[Trial]:
        return [t for t in self.trials if t.finished and self.objective in t.metrics]

    @property
    def final(self) -> list[Trial]:
        """The finished trials measured at the largest budget any finished trial reached
        (all finished trials without a multi-fidelity scheduler): what :attr:`best` and
        :meth:`pareto_front` choose from, so that a trial stopped after one epoch never
        competes with those trained in full."""
        done = self.finished
        budgets = [t.budget for t in done if t.budget is not None]
        if not budgets:
            return done
        top = max(budgets)
        return [t for t in done if t.budget is None or t.budget == top]

    @property
    def best(self) -> Trial | None:
        """The best of :attr:`final` by the objective (the first one on ties); None if none."""
        best: Trial | None = None
        for t in self.final:
            if best is None or self._better(
                t.metrics[self.objective], best.metrics[self.objective]
            ):
                best = t
        return best

    def pareto_front(self) -> list[Trial]:
        """The trials of :attr:`final` that no other beats on every objective (at least as
        good on all, better on one), in trial order."""
        from nasforge.pareto import pareto_front

        trials = [t for t in self.final if self._has_objectives(t)]
        if not trials:
            return []
        points = [[t.metrics[o] for o in self.objectives] for t in trials]
        return [trials[i] for i in pareto_front(points, self.modes)]

    def hypervolume(self, reference: Sequence[float]) -> float:
        """The hypervolume of :meth:`pareto_front` against ``reference`` (one worst value
        per objective, in the objectives' own units and directions)."""
        from nasforge.pareto import hypervolume

        front = self.pareto_front()
        points = [[t.metrics[o] for o in self.objectives] for t in front]
        if not points:
            return 0.0
        return hypervolume(points, reference, self.modes)

    def top(self, k: int) -> list[Trial]:
        """The ``k`` best trials of :attr:`final` by the objective, best first, one per
        arch (fewer when fewer archs finished); ties keep trial order."""
        check_int(k, "k", low=1)
        ranked = sorted(
            self.final, key=lambda t: t.metrics[self.objective], reverse=self.mode == "max"
        )
        top: dict[str, Trial] = {}
        for trial in ranked:
            top.setdefault(trial.key, trial)
            if len(top) == k:
                break
        return list(top.values())

    def ensemble(self, k: int = 3) -> Ensemble:
        """The :meth:`top` ``k`` archs, rebuilt with their trained weights, as one model
        that averages their logits (:class:`~nasforge.Ensemble`, in eval mode).

        The evaluator must be able to ``load_model`` (the training evaluator: from its
        checkpoints with ``checkpoint_dir``, else by training the arch again with the same
        seed, which gives the same weights). Example::

            ensemble = result.ensemble(3)
            nf.Trainer(data).evaluate(ensemble)["accuracy"]
        """
        from nasforge.ensemble import Ensemble

        load = getattr(self.evaluator, "load_model", None)
        if not callable(load):
            raise ConfigError(
                f"an ensemble needs the trained models, and the evaluator "
                f"{type(self.evaluator).__name__} cannot load them. HINT: search with "
                "nf.TrainEvaluator (with checkpoint_dir to keep every trial's weights)",
                field="evaluator",
            )
        trials = self.top(k)
        if len(trials) < k:
            raise ConfigError(
                f"k={k} but only {len(trials)} distinct archs finished. HINT: ask for at "
                f"most {len(trials)}, or search with a larger budget",
                field="k",
            )
        return Ensemble([load(t.arch) for t in trials]).eval()

    def _has_objectives(self, trial: Trial) -> bool:
        return all(math.isfinite(trial.metrics.get(o, math.nan)) for o in self.objectives)

    def best_so_far(self) -> list[float]:
        """The best objective value among :attr:`final` after each trial (NaN before)."""
        out, best = [], math.nan
        final = {t.number for t in self.final}
        for t in self.trials:
            if t.number in final:
                v = t.metrics[self.objective]
                if math.isnan(best) or self._better(v, best):
                    best = v
            out.append(best)
        return out

    def __len__(self) -> int:
        return len(self.trials)

    def __repr__(self) -> str:
        best = self.best
        text = "none" if best is None else f"{best.metrics[self.objective]:.4g} ({best.key})"
        return (
            f"SearchResult(trials={len(self.trials)}, strategy={self.strategy!r}, "
            f"{self.objective}={self.mode}, best={text})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "mode": self.mode,
            "objectives": list(self.objectives),
            "modes": list(self.modes),
            "strategy": self.strategy,
            "seed": self.seed,
            "duration": self.duration,
            "best": None if self.best is None else self.best.number,
            "trials": [t.to_dict() for t in self.trials],
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The result as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_csv(self, path: str | Path) -> None:
        """One row per trial: number, key, status, duration, error, then every metric."""
        metrics: list[str] = []
        for t in self.trials:
            metrics += [m for m in t.metrics if m not in metrics]
        with Path(path).open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["number", "key", "status", "budget", "duration", "error", *metrics])
            for t in self.trials:
                writer.writerow(
                    [t.number, t.key, t.status.value, "" if t.budget is None else t.budget]
                    + [f"{t.duration:.6f}", t.error or ""]
                    + [t.metrics.get(m, "") for m in metrics]
                )

    def plot(self, ax: Any = None, *, label: str | None = None) -> Any:
        """Plot each trial's objective and the best-so-far curve; returns the Axes.

        Needs matplotlib (``pip install "nasforge[plots]"``).
        """
        plt = _pyplot("to plot search progress")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        xs = [t.number for t in self.finished]
        ys = [t.metrics[self.objective] for t in self.finished]
        ax.scatter(xs, ys, s=10, alpha=0.4, label="trials")
        ax.plot(range(len(self.trials)), self.best_so_far(), label=label or "best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(self.objective)
        ax.set_title(f"{self.strategy or 'search'} ({self.mode} {self.objective})")
        ax.legend()
        return ax

    def plot_pareto(self, x: str | None = None, y: str | None = None, ax: Any = None) -> Any:
        """Scatter the finished trials on two objectives (default: the first two) and draw
        the Pareto front; returns the Axes. Needs matplotlib."""
        plt = _pyplot("to plot a Pareto front")
        names = list(self.objectives)
        x = x or names[0]
        y = y or (names[1] if len(names) > 1 else None)
        if y is None:
            raise ConfigError.invalid("y", y, "a metric name (the search had one objective)")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        done = [t for t in self.trials if t.finished and x in t.metrics and y in t.metrics]
        ax.scatter(
            [t.metrics[x] for t in done],
            [t.metrics[y] for t in done],
            s=12,
            alpha=0.4,
            label="trials",
        )
        front = sorted(self.pareto_front(), key=lambda t: t.metrics[x])
        ax.plot(
            [t.metrics[x] for t in front],
            [t.metrics[y] for t in front],
            "o-",
            color="C3",
            label="Pareto front",
        )
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{self.strategy or 'search'}: Pareto front ({len(front)} trials)")
        ax.legend()
        return ax

    def table(self, rows: int = 10) -> str:
        """The best ``rows`` trials (the whole Pareto front with several objectives) as a
        text table with the objectives, test accuracy, size and latency."""
        if len(self.objectives) > 1:
            trials = self.pareto_front()
            title = f"Pareto front: {len(trials)} of {len(self.trials)} trials"
        else:
            sign = -1 if self.mode == "max" else 1
            trials = sorted(self.final, key=lambda t: sign * t.metrics[self.objective])[:rows]
            title = f"best {len(trials)} of {len(self.trials)} trials"
        columns = list(
            dict.fromkeys([*self.objectives, "test_acc", "params", "macs", "latency_ms", "epochs"])
        )
        columns = [c for c in columns if any(c in t.metrics for t in trials)]
        header = ["trial", *columns, "arch"]
        body = [[str(t.number), *(_cell(t.metrics.get(c)) for c in columns), t.key] for t in trials]
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header) - 1)]
        lines = [title]
        for row in [header, *body]:
            cells = "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=False))
            lines.append(f"{cells}  {row[-1]}")
        return "\n".join(lines)

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the search's results into ``directory`` (created if needed); return the
        paths written by kind.

        ``trials.csv`` and ``trials.json`` (every trial), ``best.json`` (the best trial's
        number, key, arch, metrics and the space, which ``Space.from_dict`` rebuilds, and
        the labels of the classes when the data has them),
        ``best_model.pt`` (its trained weights, when the evaluator can ``load_model``;
        read back with :func:`nasforge.load_model`; ``best_model.ts``, TorchScript, for an
        int8 model), and with matplotlib ``progress.png``
        (and ``pareto.png`` with several objectives). ``nasforge search --out DIR`` writes
        exactly this.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = {"csv": out / "trials.csv", "json": out / "trials.json"}
        self.to_csv(written["csv"])
        self.to_json(written["json"])
        best = self.best
        if best is not None:
            written["best"] = out / "best.json"
            written["best"].write_text(json.dumps(self._best_record(best), indent=1))
            if callable(getattr(self.evaluator, "load_model", None)):
                written["model"] = self._save_model(best, out)
        written.update(self._save_plots(out))
        return written

    def _save_model(self, best: Trial, out: Path) -> Path:
        """``best_model.pt`` (:func:`nasforge.save_model`), or ``best_model.ts``
        (TorchScript) for an int8 model, which only TorchScript can hold."""
        import torch

        from nasforge.export import export_torchscript, is_quantized, save_model

        model = self.evaluator.load_model(best.arch)
        if is_quantized(model):
            example = torch.zeros(1, *self.evaluator.input_shape)
            return export_torchscript(model, out / "best_model.ts", example)
        metadata = {"arch": best.arch.to_dict(), "space": self._space_name()}
        if getattr(self.evaluator, "build_options", None):
            metadata["build_options"] = self.evaluator.build_options
        return save_model(model, out / "best_model.pt", metadata=metadata)

    def _best_record(self, best: Trial) -> dict[str, Any]:
        record: dict[str, Any] = {
            "number": best.number,
            "key": best.key,
            "arch": best.arch.to_dict(),
            "metrics": best.metrics,
            "space": None if self.space is None else self.space.to_dict(),
        }
        for name in ("input_shape", "num_classes", "classes", "build_options"):
            value = getattr(self.evaluator, name, None)
            if value:
                record[name] = list(value) if isinstance(value, tuple) else value
        return record

    def _space_name(self) -> str | None:
        return None if self.space is None else self.space.name

    def _save_plots(self, out: Path) -> dict[str, Path]:
        """The progress (and Pareto) plots as PNG files, drawn without pyplot so that the
        caller's matplotlib backend is left alone; nothing without matplotlib."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            logger.info("matplotlib is not installed: no plots (pip install 'nasforge[plots]')")
            return {}
        written = {}
        plots: list[tuple[str, str, Callable[..., Any]]] = [
            ("progress_plot", "progress.png", self.plot)
        ]
        if len(self.objectives) > 1:
            plots.append(("pareto_plot", "pareto.png", self.plot_pareto))
        for kind, name, draw in plots:
            figure = Figure(figsize=(6, 4))
            draw(ax=figure.subplots())
            written[kind] = out / name
            figure.savefig(written[kind], dpi=120, bbox_inches="tight")
        return written


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _pyplot(purpose: str) -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("matplotlib", extra="plots", purpose=purpose) from None
    return plt
