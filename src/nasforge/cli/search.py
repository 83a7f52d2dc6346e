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

``training`` takes the :class:`~nasforge.TrainConfig` options plus the training
evaluator's ``latency`` (:class:`~nasforge.measure.LatencyOptions` fields, or false) and
``val_fraction``. Every field is checked, and every plugin built, before the data loads or
anything is written (:func:`check_config`); errors name the field
(``strategy.options.population_size``) and unknown fields are errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasforge import registry
from nasforge.config import call_user, check_fields, check_registered, kwargs, named, read_yaml
from nasforge.errors import ConfigError, MissingDependencyError, NasforgeError, close_matches
from nasforge.evaluators.training import TrainEvaluator
from nasforge.export import resolve_builder
from nasforge.measure import LatencyOptions
from nasforge.nas.loop import check_setup, search
from nasforge.nas.objectives import Objectives, parse_constraints
from nasforge.nas.result import SearchResult
from nasforge.space.base import Space
from nasforge.train.config import TrainConfig
from nasforge.validation import check_int, check_number

__all__ = [
    "SearchConfig",
    "build_evaluator",
    "check_config",
    "load_search_config",
    "run_search",
    "space_from_config",
]

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
#: ``training`` options that belong to the training evaluator rather than to TrainConfig.
_EVALUATOR_OPTIONS = ("latency", "val_fraction")


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
    training: TrainConfig = field(default_factory=TrainConfig)
    latency: LatencyOptions | None = field(default_factory=LatencyOptions)
    val_fraction: float = 0.2
    journal: Path | bool = True  # True: DIR/journal.jsonl; False: none; relative to DIR
    max_consecutive_failures: int | None = 10

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
    """Read and check a search config from a YAML file or an already parsed dict: every
    field, and every plugin it names (built once), before any data loads."""
    raw, _ = read_yaml(source)
    raw = check_fields(raw, "config", _FIELDS)
    for required in _REQUIRED:
        if required not in raw:
            raise ConfigError(
                f"the config has no {required!r} field. HINT: see docs/search.md, "
                "'Searching from YAML'",
                field=required,
            )
    objectives = Objectives.parse(raw.get("objective", "val_acc"), raw.get("mode", "max"))
    scheduler = _inline_plugin(raw.get("scheduler"), "scheduler")
    training, latency, val_fraction = _training(raw.get("training"), scheduler)
    failures = raw.get("max_consecutive_failures", 10)
    config = SearchConfig(
        space=space_from_config(raw["space"]),
        data=_data(raw["data"]),
        strategy=_plugin(raw.get("strategy", "evolution"), "strategy"),
        budget=check_int(raw["budget"], "budget", low=1),
        seed=check_int(raw.get("seed", 0), "seed", low=0),
        objective=objectives.names,
        mode=objectives.modes,
        constraints=tuple(str(c) for c in parse_constraints(raw.get("constraints"))),
        scheduler=scheduler,
        executor=_inline_plugin(raw.get("executor"), "executor"),
        training=training,
        latency=latency,
        val_fraction=val_fraction,
        journal=_journal(raw.get("journal", True)),
        max_consecutive_failures=check_int(
            failures, "max_consecutive_failures", low=1, optional=True
        ),
    )
    check_config(config)
    return config


def run_search(
    config: SearchConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool | None = None,
) -> SearchResult:
    """Run the search of ``config``, writing the journal and the results into ``out``
    (what :meth:`SearchResult.save` writes)."""
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
    result.save(out)
    return result


def build_evaluator(config: SearchConfig, checkpoint_dir: Path | None) -> TrainEvaluator:
    """Load the data and build the training evaluator of ``config``."""
    return TrainEvaluator(
        config.space,
        _load_data(*config.data),
        config=config.training,
        latency=config.latency if config.latency is not None else False,
        val_fraction=config.val_fraction,
        checkpoint_dir=checkpoint_dir,
    )


def check_config(config: SearchConfig) -> None:
    """Build the strategy, scheduler and executor and check the objectives and
    constraints against the training evaluator's metrics, so that a bad config fails
    before data loads or anything is written."""
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
    try:
        check_setup(
            strategy=strategy,
            scheduler=scheduler,
            objectives=Objectives.parse(list(config.objective), list(config.mode)),
            constraints=parse_constraints(list(config.constraints)),
            metrics=TrainEvaluator.metric_names(latency=config.latency is not None),
            epochs=config.training.epochs,
        )
    except ConfigError as exc:
        if exc.field == "scheduler.max_budget":
            raise ConfigError(
                f"{exc} (training.epochs is {config.training.epochs})", field=exc.field
            ) from None
        raise


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
    check_registered("space", name, "space.name")
    options = kwargs(spec.get("options"), "space.options")
    return _build_field("space.options", "space", name, **options)


def _training(
    section: Any, scheduler: dict[str, Any] | None
) -> tuple[TrainConfig, LatencyOptions | None, float]:
    """The ``training`` section: a TrainConfig, and the evaluator's latency options and
    validation fraction. Without ``epochs``, a scheduler's ``max_budget`` is a trial's
    longest training."""
    options = kwargs(section, "training")
    evaluator = {k: options.pop(k) for k in _EVALUATOR_OPTIONS if k in options}
    if scheduler is not None and "max_budget" in scheduler and "epochs" not in options:
        options["epochs"] = scheduler["max_budget"]
    for key in options:
        if key not in TrainConfig.FIELDS:
            allowed = (*TrainConfig.FIELDS, *_EVALUATOR_OPTIONS)
            raise ConfigError.invalid(
                f"training.{key}",
                options[key],
                f"one of the training options {', '.join(allowed)}",
                ("unknown option." + close_matches(str(key), allowed)).strip(),
            )
    try:
        latency = LatencyOptions.parse(evaluator.get("latency", True))
    except ConfigError as exc:
        raise exc.within("training") from None
    val_fraction = check_number(
        evaluator.get("val_fraction", 0.2),
        "training.val_fraction",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    return TrainConfig.from_dict(options, field="training"), latency, val_fraction


def _journal(value: Any) -> Path | bool:
    if isinstance(value, str) and value:
        return Path(value)
    if not isinstance(value, bool):
        raise ConfigError.invalid("journal", value, "a file path, true or false")
    return value


def _journal_path(config: SearchConfig, out: Path) -> Path | None:
    if config.journal is True:
        return out / "journal.jsonl"
    if config.journal is False:
        return None
    return out / config.journal  # an absolute path stays as it is


def _data(section: Any) -> tuple[str, dict[str, Any]]:
    name, spec = named(section, "data")
    check_fields(spec, "data", _PLUGIN_FIELDS)
    if ":" not in name:
        check_registered("dataset", name, "data.name", also="or 'package.module:function'")
    else:
        resolve_builder(name, field="data.name")
    return name, kwargs(spec.get("options"), "data.options")


def _plugin(section: Any, kind: str) -> tuple[str, dict[str, Any]]:
    name, spec = named(section, kind)
    check_fields(spec, kind, _PLUGIN_FIELDS)
    check_registered(kind, name, f"{kind}.name")
    options = kwargs(spec.get("options"), f"{kind}.options")
    for key in ("space", "seed"):  # the config's own sections set these
        if key in options:
            raise ConfigError.invalid(
                f"{kind}.options.{key}",
                options[key],
                "absent",
                hint=f"set {key} at the top level of the config, not among the options",
            )
    return name, options


def _inline_plugin(section: Any, kind: str) -> dict[str, Any] | None:
    """``scheduler``/``executor``: a name or ``{name: ..., option: value, ...}``."""
    if section is None:
        return None
    name, spec = named(section, kind)
    check_registered(kind, name, f"{kind}.name")
    return {**spec, "name": name}


def _split_name(section: dict[str, Any] | None, default: str) -> dict[str, Any]:
    """``{name: n, **options}`` as ``build``'s keyword arguments ``name=n, **options``."""
    section = dict(section or {"name": default})
    return {"name": section.pop("name"), **section}


def _build_field(field_name: str, kind: str, name: str, **options: Any) -> Any:
    """``registry.build`` whose errors (and a constructor's own exceptions) name the field."""
    try:
        return registry.build(kind, name, **options)
    except MissingDependencyError:
        raise
    except NasforgeError as exc:
        raise ConfigError(f"{field_name}: {exc}", field=field_name) from None
    except Exception as exc:
        raise ConfigError(
            f"{field_name}: {kind} {name!r} raised {type(exc).__name__}: {exc}",
            field=field_name,
        ) from None


def _load_data(name: str, options: dict[str, Any]) -> Any:
    if ":" not in name:
        return _build_field("data.options", "dataset", name, **options)
    builder = resolve_builder(name, field="data.name")
    return call_user(builder, options, "data.options", name=name)
