"""``nasforge search CONFIG.yaml``: a search described in YAML.

.. code-block:: yaml

    space: {name: cnn, options: {max_stages: 3}}   # a registered space that builds models
    data: {name: mnist1d, options: {num_samples: 5000}}  # registered, or module:function
    strategy: {name: evolution, options: {population_size: 12}}
    budget: 40                      # trials
    seed: 0
    objective: [val_acc, latency_ms]   # one metric or a list
    mode: [max, min]                   # one mode or one per objective
    constraints: ["params <= 100_000", "latency_ms <= 2"]
    scheduler: {name: hyperband, min_budget: 1, max_budget: 9, eta: 3}   # optional
    training: {epochs: 9, lr: 0.003, batch_size: 128, latency: {threads: 1}}
    executor: {name: process, workers: 2, timeout: 900}                  # optional
    journal: search.jsonl           # optional, relative to DIR; default DIR/journal.jsonl
    max_consecutive_failures: 10

``training`` takes the :class:`~nasforge.nas.train_evaluator.TrainEvaluator` options.
Every field is checked, and every plugin built, before the data loads or anything is
written (:func:`check_config`); errors name the field (``strategy.options.population_size``)
and unknown fields are errors.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasforge import registry
from nasforge.config import check_fields, is_int, kwargs, named, read_yaml
from nasforge.errors import ConfigError, MissingDependencyError, NasforgeError, close_matches
from nasforge.nas.objectives import Objectives, parse_constraints
from nasforge.nas.result import SearchResult
from nasforge.space.base import Space

__all__ = [
    "SearchConfig",
    "build_evaluator",
    "check_config",
    "load_search_config",
    "run_search",
    "space_from_config",
    "summary_table",
]

logger = logging.getLogger(__name__)

_FIELDS = (
    "space",
    "data",
    "strategy",
    "budget",
    "seed",
    "objective",
    "mode",
    "constraints",
    "scheduler",
    "training",
    "executor",
    "journal",
    "max_consecutive_failures",
)
_REQUIRED = ("space", "data", "budget")
_PLUGIN_FIELDS = ("name", "options")


@dataclass(frozen=True)
class SearchConfig:
    """A checked search config (see the module docstring for the YAML)."""

    space: Space
    data: tuple[str, dict[str, Any]]
    strategy: tuple[str, dict[str, Any]]
    budget: int
    seed: int = 0
    objective: tuple[str, ...] = ("val_acc",)
    mode: tuple[str, ...] = ("max",)
    constraints: tuple[str, ...] = ()
    scheduler: dict[str, Any] | None = None
    executor: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    journal: Path | bool = True  # True: DIR/journal.jsonl; False: none; relative to DIR
    max_consecutive_failures: int | None = 10
    #: the ``space`` section as written, so that :func:`space_from_config` rebuilds it
    space_spec: Any = None

    def search_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`nasforge.search` this config sets."""
        return {
            "strategy": self.strategy[0],
            "strategy_options": self.strategy[1],
            "budget": self.budget,
            "seed": self.seed,
            "objective": list(self.objective),
            "mode": list(self.mode),
            "constraints": list(self.constraints),
            "scheduler": self.scheduler,
            "executor": self.executor,
            "max_consecutive_failures": self.max_consecutive_failures,
        }


def load_search_config(source: str | os.PathLike[str] | dict[str, Any]) -> SearchConfig:
    """Read and check a search config from a YAML file or an already parsed dict."""
    raw, _ = read_yaml(source)
    raw = check_fields(raw, "config", _FIELDS)
    for required in _REQUIRED:
        if required not in raw:
            raise ConfigError(
                f"the config has no {required!r} field. HINT: see docs/search.md, "
                "'Searching from YAML'",
                field=required,
            )
    budget = _count(raw["budget"], "budget")
    seed = raw.get("seed", 0)
    if not is_int(seed) or seed < 0:
        raise ConfigError.invalid("seed", seed, "a non-negative integer")
    objectives = Objectives.parse(raw.get("objective", "val_acc"), raw.get("mode", "max"))
    constraints = tuple(str(c) for c in parse_constraints(raw.get("constraints")))
    failures = raw.get("max_consecutive_failures", 10)
    if failures is not None:
        failures = _count(failures, "max_consecutive_failures")
    training = kwargs(raw.get("training"), "training")
    scheduler = _inline_plugin(raw.get("scheduler"), "scheduler")
    if scheduler is not None and "max_budget" in scheduler:
        training.setdefault("epochs", scheduler["max_budget"])  # a trial's longest training
    journal = raw.get("journal", True)
    if isinstance(journal, str) and journal:
        journal = Path(journal)
    elif not isinstance(journal, bool):
        raise ConfigError.invalid("journal", journal, "a file path, true or false")
    return SearchConfig(
        space=space_from_config(raw["space"]),
        space_spec=copy.deepcopy(raw["space"]),
        data=_data(raw["data"]),
        strategy=_plugin(raw.get("strategy", "evolution"), "strategy"),
        budget=budget,
        seed=seed,
        objective=objectives.names,
        mode=objectives.modes,
        constraints=constraints,
        scheduler=scheduler,
        executor=_inline_plugin(raw.get("executor"), "executor"),
        training=training,
        journal=journal,
        max_consecutive_failures=failures,
    )


def run_search(
    config: SearchConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool = True,
) -> SearchResult:
    """Run the search of ``config``, writing the journal and the results into ``out``:
    ``trials.csv``, ``trials.json``, ``best.json``, ``best_model.pt`` and plots."""
    from nasforge.nas.loop import search

    out = Path(out)
    journal = _journal_path(config, out)
    if resume and (journal is None or not journal.is_file()):
        raise ConfigError.invalid(
            "--resume",
            str(journal),
            "an existing journal of this search",
            hint="run the search once without --resume first",
        )
    if journal is not None and journal.is_file() and not resume:
        raise ConfigError(
            f"{str(journal)!r} already holds a search. HINT: add --resume to continue it, "
            "or choose another --out",
            field="journal",
        )
    evaluator = build_evaluator(config, out / "checkpoints")
    out.mkdir(parents=True, exist_ok=True)
    result = search(
        config.space,
        evaluator,
        journal=journal,
        resume=resume,
        progress=progress,
        **config.search_options(),
    )
    write_outputs(result, evaluator, config, out)
    return result


def build_evaluator(config: SearchConfig, checkpoint_dir: Path | None) -> Any:
    """Check everything that can be checked without data (:func:`check_config`), then load
    the data and build the training evaluator: all a search does before it trains."""
    from nasforge.nas.train_evaluator import TrainEvaluator

    check_config(config)
    data = _load_data(*config.data)
    try:
        return TrainEvaluator(config.space, data, checkpoint_dir=checkpoint_dir, **config.training)
    except ConfigError as exc:  # "lr must be ..." -> "training.lr must be ..."
        name = exc.field or ""
        if name.split(".")[0] in _training_options() and str(exc).startswith(name):
            raise ConfigError(f"training.{exc}", field=f"training.{name}") from None
        raise


def write_outputs(
    result: SearchResult, evaluator: Any, config: SearchConfig, out: Path
) -> dict[str, Path]:
    """Write the trials, the best architecture (and its weights) and the plots."""
    from nasforge.compress.export import save_model

    written = {"csv": out / "trials.csv", "json": out / "trials.json"}
    result.to_csv(written["csv"])
    result.to_json(written["json"])
    best = result.best
    if best is not None:
        written["best"] = out / "best.json"
        written["best"].write_text(
            json.dumps(
                {
                    "number": best.number,
                    "key": best.key,
                    "arch": best.arch.to_dict(),
                    "metrics": best.metrics,
                    "space": config.space_spec,
                    "input_shape": list(evaluator.input_shape),
                    "num_classes": evaluator.num_classes,
                },
                indent=1,
            )
        )
        written["model"] = out / "best_model.pt"
        metadata = {"arch": best.arch.to_dict(), "space": config.space.name}
        save_model(evaluator.load_model(best.arch), written["model"], metadata=metadata)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed: no plots (pip install 'nasforge[plots]')")
        return written
    ax = result.plot()
    written["progress_plot"] = out / "progress.png"
    ax.figure.savefig(written["progress_plot"], dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    if len(result.objectives) > 1:
        ax = result.plot_pareto()
        written["pareto_plot"] = out / "pareto.png"
        ax.figure.savefig(written["pareto_plot"], dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
    return written


def summary_table(result: SearchResult, rows: int = 10) -> str:
    """The best trials (the Pareto front with several objectives) as a text table."""
    if len(result.objectives) > 1:
        trials = result.pareto_front()
        title = f"Pareto front: {len(trials)} of {len(result.trials)} trials"
    else:
        sign = -1 if result.mode == "max" else 1
        trials = sorted(result.final, key=lambda t: sign * t.metrics[result.objective])
        title = f"best {min(rows, len(trials))} of {len(result.trials)} trials"
    trials = trials[:rows] if len(result.objectives) == 1 else trials
    columns = list(
        dict.fromkeys([*result.objectives, "test_acc", "params", "macs", "latency_ms", "epochs"])
    )
    columns = [c for c in columns if any(c in t.metrics for t in trials)]
    header = ["trial", *columns, "arch"]
    body = [[str(t.number), *(_cell(t.metrics.get(c)) for c in columns), t.key] for t in trials]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header) - 1)]
    lines = [title]
    for row in [header, *body]:
        lines.append(
            "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _journal_path(config: SearchConfig, out: Path) -> Path | None:
    if config.journal is True:
        return out / "journal.jsonl"
    if config.journal is False:
        return None
    return out / config.journal  # an absolute path stays as it is


def _count(value: Any, name: str) -> int:
    if not is_int(value) or value < 1:
        raise ConfigError.invalid(name, value, "a positive integer")
    return value


def space_from_config(section: Any) -> Space:
    """The space of a config's ``space`` section (also stored in ``best.json``): a
    registered space name, or ``{name: ..., options: {...}}``."""
    if isinstance(section, dict) and "params" in section:
        raise ConfigError.invalid(
            "space.params",
            section["params"],
            "no inline parameters: the search trains models, so the space must be a "
            "registered space that builds networks",
            hint="use mlp, cnn or nb201, or register your own space (docs/registry.md)",
        )
    name, spec = named(section, "space")
    check_fields(spec, "space", _PLUGIN_FIELDS)
    _known("space", name, "space.name")
    return registry.build("space", name, **kwargs(spec.get("options"), "space.options"))


def _data(section: Any) -> tuple[str, dict[str, Any]]:
    name, spec = named(section, "data")
    check_fields(spec, "data", _PLUGIN_FIELDS)
    if ":" not in name:
        _known("dataset", name, "data.name", also="or 'package.module:function'")
    return name, kwargs(spec.get("options"), "data.options")


def _plugin(section: Any, kind: str) -> tuple[str, dict[str, Any]]:
    name, spec = named(section, kind)
    check_fields(spec, kind, _PLUGIN_FIELDS)
    _known(kind, name, f"{kind}.name")
    return name, kwargs(spec.get("options"), f"{kind}.options")


def _inline_plugin(section: Any, kind: str) -> dict[str, Any] | None:
    """``scheduler``/``executor``: a name or ``{name: ..., option: value, ...}``."""
    if section is None:
        return None
    name, spec = named(section, kind)
    _known(kind, name, f"{kind}.name")
    return {**spec, "name": name}


def _known(kind: str, name: str, field_name: str, also: str = "") -> None:
    names = registry.available(kind)
    if name not in names:
        raise ConfigError.invalid(
            field_name,
            name,
            f"one of {', '.join(names)}" + (f" {also}" if also else ""),
            close_matches(name, names).strip() or None,
        )


def check_config(config: SearchConfig) -> None:
    """Build the strategy, scheduler and executor and check the training options and the
    objectives against them, so that a bad config fails before data loads or anything is
    written."""
    from nasforge.nas.loop import check_setup
    from nasforge.nas.train_evaluator import TrainEvaluator

    strategy_name, options = config.strategy
    strategy = _build_field(
        "strategy.options",
        "strategy",
        strategy_name,
        space=config.space,
        seed=config.seed,
        **options,
    )
    scheduler = _build_field("scheduler", "scheduler", **_split_name(config.scheduler, "none"))
    if config.executor is not None:  # executors acquire workers on first use, not here
        _build_field("executor", "executor", **_split_name(config.executor, "serial"))
    allowed = _training_options()
    for key in config.training:
        if key not in allowed:
            raise ConfigError.invalid(
                f"training.{key}",
                config.training[key],
                f"one of the training options {', '.join(allowed)}",
                ("unknown option." + close_matches(key, allowed)).strip(),
            )
    latency = config.training.get("latency", True)
    epochs = config.training.get("epochs", allowed["epochs"].default)
    check_setup(
        strategy=strategy,
        scheduler=scheduler,
        objectives=Objectives.parse(list(config.objective), list(config.mode)),
        constraints=parse_constraints(list(config.constraints)),
        metrics=TrainEvaluator.metric_names(latency=latency not in (None, False)),
        epochs=epochs,
    )


def _training_options() -> dict[str, inspect.Parameter]:
    """The ``training`` section's options: TrainEvaluator's, but those the config sets."""
    from nasforge.nas.train_evaluator import TrainEvaluator

    parameters = inspect.signature(TrainEvaluator).parameters
    return {k: v for k, v in parameters.items() if k not in ("space", "data", "checkpoint_dir")}


def _split_name(section: dict[str, Any] | None, default: str) -> dict[str, Any]:
    """``{name: n, **options}`` as ``build``'s keyword arguments ``name=n, **options``."""
    section = dict(section or {"name": default})
    return {"name": section.pop("name"), **section}


def _build_field(field_name: str, kind: str, name: str, **options: Any) -> Any:
    try:
        return registry.build(kind, name, **options)
    except MissingDependencyError:
        raise
    except NasforgeError as exc:
        raise ConfigError(f"{field_name}: {exc}", field=field_name) from None


def _load_data(name: str, options: dict[str, Any]) -> Any:
    from nasforge.compress.export import resolve_builder
    from nasforge.data.bundle import load_dataset

    if ":" not in name:
        return load_dataset(name, **options)
    return resolve_builder(name, field="data.name")(**options)
