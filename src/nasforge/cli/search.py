"""``nasforge search CONFIG.yaml``: a search described in YAML.

.. code-block:: yaml

    space:                          # a registered space that builds models
      name: nb201
      options: {}
      build_options: {channels: 16, cells_per_stage: 1}   # Space.build options (optional)
    data: {name: mnist1d, options: {num_samples: 5000}}  # registered, module:function,
                                    # or torchvision:CIFAR10 (options: {root: data})
    evaluator: {name: supernet, options: {calibration_batches: 8}}   # optional, default train
    strategy: {name: evolution, options: {population_size: 12}}
    budget: 40                      # trials
    seed: 0
    objective: [val_acc, params]    # one metric or a list
    mode: [max, min]                # one mode or one per objective
    constraints: ["params <= 100_000"]
    scheduler: {name: hyperband, min_budget: 1, max_budget: 9, eta: 3}   # optional (train)
    training: {epochs: 9, lr: 0.003, batch_size: 128, latency: {threads: 1}}
    warm_start: {proxy: synflow, pool: 500, top: 10, options: {batch_size: 64}}  # optional
    executor: {name: process, workers: 2, timeout: 900}                  # optional
    journal: search.jsonl           # optional, relative to DIR; default DIR/journal.jsonl
    trackers:                       # optional: experiment trackers (relative paths: in DIR)
      - {name: tensorboard, options: {log_dir: tb}}
      - {name: mlflow, options: {tracking_uri: "sqlite:///mlflow.db", experiment: demo}}
    max_consecutive_failures: 10
    retrain: {epochs: 20}           # optional: the best arch trained stand-alone afterwards

``training`` takes the :class:`~nasforge.TrainConfig` options plus the training
evaluator's ``latency`` (:class:`~nasforge.measure.LatencyOptions` fields, or false) and
``val_fraction``. ``evaluator`` is ``train`` (the default: every trial trained for
``training.epochs``), ``compression`` (for a ``compressed`` space: every trial trained,
compressed as its ``compress.*`` choices say and measured as deployed), ``supernet`` (one
supernet trained as ``training`` says and checkpointed at ``DIR/supernet.pt``, trials
scored with its weights) or a zero-cost proxy
(``synflow``, ``naswot``, ``snip``); ``space.build_options`` go to every network built,
supernets included. ``warm_start`` ranks ``pool`` archs with a proxy and starts the
strategy from the best ``top``. ``retrain`` (true: the ``training`` options; a mapping:
those options changed) trains the best arch from scratch into ``DIR/retrained.json`` and
``DIR/retrained_model.pt``. ``trackers`` are registered ``tracker`` plugins
(:class:`~nasforge.TensorBoardTracker`, :class:`~nasforge.MLflowTracker`) that record
every trial; paths in their options (``log_dir``, a ``sqlite:///`` tracking URI) are
relative to ``DIR`` unless absolute.

A ``darts`` section (``{order: 1, guard: beta, guard_strength: 1.0, arch_lr: 3e-4,
arch_weight_decay: 1e-3, exclude: [none], val_fraction: 0.5}``, or true) replaces the
ask/tell search by one DARTS run (:class:`~nasforge.oneshot.Darts`) trained as ``training``
says, written to ``DIR/darts.json``; the search's fields (strategy, budget, seed,
evaluator, warm_start, objective, mode, constraints, scheduler, executor, journal,
max_consecutive_failures) must then be absent.

Every field is checked, and every plugin built, before the data loads or anything is
written (:func:`check_config`); errors name the field (``strategy.options.population_size``)
and unknown fields are errors. This module reads and checks the config; running it is
:mod:`nasforge.cli.search_run`, whose :func:`~nasforge.cli.search_run.run` does what
``nasforge search`` does (its public names are importable from here too).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasforge import registry
from nasforge._lazy import lazy_exports
from nasforge.config import call_user, check_fields, check_registered, kwargs, named, read_yaml
from nasforge.data.bundle import TORCHVISION_PREFIX, check_dataset_name, dataset_call
from nasforge.errors import (
    ConfigError,
    MissingDependencyError,
    NasforgeError,
    close_matches,
)
from nasforge.evaluators.compression import CompressionEvaluator
from nasforge.evaluators.proxies import ZeroCostProxy
from nasforge.evaluators.supernet import SupernetEvaluator
from nasforge.evaluators.training import TrainEvaluator
from nasforge.export import resolve_builder
from nasforge.measure import LatencyOptions
from nasforge.nas.loop import check_setup
from nasforge.nas.objectives import Objectives, parse_constraints
from nasforge.oneshot.darts import GUARDS, Darts
from nasforge.space.base import Space
from nasforge.space.compression import CompressedSpace
from nasforge.space.params import Choice
from nasforge.train.config import TrainConfig
from nasforge.validation import check_choice, check_int, check_number, check_sequence

#: The running half of ``nasforge search`` lives in :mod:`nasforge.cli.search_run`, which
#: imports this module; its public names stay importable from here, loaded on first use
#: (so this module never imports that one).
_RUN_NAMES = ("RunOutcome", "build_evaluator", "run", "run_darts", "run_retrain", "run_search")

__all__ = [
    "SearchConfig",
    "WarmStart",
    "check_config",
    "evaluator_metrics",
    "load_search_config",
    "space_from_config",
    *_RUN_NAMES,
]
__getattr__, __dir__ = lazy_exports(
    __name__, globals(), dict.fromkeys(_RUN_NAMES, "nasforge.cli.search_run")
)

_FIELDS = (
    "space",
    "data",
    "evaluator",
    "strategy",
    "budget",
    "seed",
    "objective",
    "mode",
    "constraints",
    "scheduler",
    "training",
    "warm_start",
    "executor",
    "journal",
    "max_consecutive_failures",
    "darts",
    "retrain",
    "trackers",
)
_REQUIRED = ("space", "data", "budget")
_PLUGIN_FIELDS = ("name", "options")
_SPACE_FIELDS = ("name", "options", "build_options")
_WARM_START_FIELDS = ("proxy", "pool", "top", "options")
#: ``training`` options that belong to the training evaluator rather than to TrainConfig.
_EVALUATOR_OPTIONS = ("latency", "val_fraction")
#: The evaluators a config can name besides the zero-cost proxies.
_EVALUATORS = ("train", "supernet", "compression")
#: The fields of an ask/tell search: a DARTS run (a ``darts`` section) takes none of them.
_SEARCH_ONLY = (
    "strategy",
    "budget",
    "seed",
    "evaluator",
    "warm_start",
    "objective",
    "mode",
    "constraints",
    "scheduler",
    "executor",
    "journal",
    "max_consecutive_failures",
    "trackers",
)
#: Constructor arguments that the config's own sections set: never plugin options.
_SET_BY_CONFIG = (
    "space",
    "data",
    "config",
    "supernet",
    "checkpoint",
    "checkpoint_dir",
    "build_options",
    "val_fraction",
    "latency",
    "input_shape",
    "num_classes",
)


def _guard(value: Any, name: str) -> str | None:
    """A DARTS guard; ``none`` (or null) for plain DARTS."""
    if value is None:
        return None
    guard = str(check_choice(value, name, (*GUARDS, "none")))
    return None if guard == "none" else guard


def _scalar(value: Any, name: str) -> Any:
    if not isinstance(value, str | int | float | bool):
        raise ConfigError.invalid(name, value, "a value of the space's choices, e.g. none")
    return value


#: Value checks of the evaluators', proxies' and DARTS's options, made before data loads.
_OPTION_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "calibration_batches": lambda v, f: check_int(v, f, low=1),
    "batch_size": lambda v, f: check_int(v, f, low=1),
    "seed": lambda v, f: check_int(v, f, low=0),
    "order": lambda v, f: check_int(v, f, low=1, high=2),
    "guard": _guard,
    "guard_strength": lambda v, f: check_number(v, f, low=0, optional=True),
    "arch_lr": lambda v, f: check_number(v, f, low=0, low_open=True),
    "arch_weight_decay": lambda v, f: check_number(v, f, low=0),
    "exclude": lambda v, f: check_sequence(
        v, f, _scalar, min_length=0, expected="a list of values never derived"
    ),
    "val_fraction": lambda v, f: check_number(v, f, low=0, high=1, low_open=True, high_open=True),
}


@dataclass(frozen=True)
class WarmStart:
    """The ``warm_start`` section: rank ``pool`` archs with the zero-cost ``proxy`` (built
    with ``options``) and let the strategy begin with the best ``top``."""

    proxy: str
    pool: int = 100
    top: int = 10
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchConfig:
    """A checked search config (see the module docstring for the YAML)."""

    space: Space
    data: tuple[str, dict[str, Any]]
    strategy: tuple[str, dict[str, Any]]
    budget: int | None  # None: a DARTS run, which has no trials
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
    build_options: dict[str, Any] = field(default_factory=dict)
    evaluator: tuple[str, dict[str, Any]] = ("train", {})
    warm_start: WarmStart | None = None
    darts: dict[str, Any] | None = None  # the Darts options of a DARTS run
    retrain: TrainConfig | None = None
    trackers: tuple[tuple[str, dict[str, Any]], ...] = ()  # (name, options), unanchored

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
    darts = _darts(raw.get("darts"))
    if darts is not None:
        _refuse_search_fields(raw)
    for required in ("space", "data") if darts is not None else _REQUIRED:
        if required not in raw:
            raise ConfigError(
                f"the config has no {required!r} field. HINT: see docs/search.md, "
                "'Searching from YAML'",
                field=required,
            )
    space, build_options = _space_section(raw["space"])
    evaluator = _evaluator("train" if raw.get("evaluator") is None else raw["evaluator"])
    objectives = Objectives.parse(
        raw.get("objective", _default_objective(evaluator[0])), raw.get("mode", "max")
    )
    scheduler = _inline_plugin(raw.get("scheduler"), "scheduler")
    training, latency, val_fraction = _training(raw.get("training"), scheduler)
    failures = raw.get("max_consecutive_failures", 10)
    config = SearchConfig(
        space=space,
        data=_data(raw["data"]),
        strategy=_plugin(raw.get("strategy", "evolution"), "strategy"),
        budget=None if darts is not None else check_int(raw["budget"], "budget", low=1),
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
        build_options=build_options,
        evaluator=evaluator,
        warm_start=_warm_start(raw.get("warm_start")),
        darts=darts,
        retrain=_retrain(raw.get("retrain"), training),
        trackers=_trackers(raw.get("trackers")),
    )
    check_config(config)
    return config


def check_config(config: SearchConfig) -> None:
    """Build the strategy, scheduler and executor and check the objectives and
    constraints against the evaluator's metrics (a DARTS run: the space's supernet and
    ``exclude``), so that a bad config fails before data loads or anything is written."""
    if config.darts is not None:
        _check_darts(config)
        return
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
    for i, (name, options) in enumerate(config.trackers):  # trackers write on first use
        _build_field(f"trackers[{i}].options", "tracker", name, **options)
    _check_evaluator(config)
    try:
        check_setup(
            strategy=strategy,
            scheduler=scheduler,
            objectives=Objectives.parse(list(config.objective), list(config.mode)),
            constraints=parse_constraints(list(config.constraints)),
            metrics=evaluator_metrics(config),
            epochs=config.training.epochs,
        )
    except ConfigError as exc:
        if exc.field == "scheduler.max_budget":
            raise ConfigError(
                f"{exc} (training.epochs is {config.training.epochs})", field=exc.field
            ) from None
        raise


def evaluator_metrics(config: SearchConfig) -> tuple[str, ...]:
    """The metrics the evaluator of ``config`` returns (what objectives may name)."""
    name = config.evaluator[0]
    if name == "train":
        return TrainEvaluator.metric_names(latency=config.latency is not None)
    if name == "supernet":
        return tuple(SupernetEvaluator.metrics)
    if name == "compression":
        return CompressionEvaluator.metric_names(latency=config.latency is not None)
    return (_proxy_class(name).name, "params")  # ZeroCostProxy.metrics, read off the class


def space_from_config(section: Any) -> Space:
    """The space of a config's ``space`` section (also stored in ``best.json``): a
    registered space name, or ``{name: ..., options: {...}}`` (``build_options`` are read
    by the config loader, not here)."""
    if isinstance(section, dict) and "params" in section:
        raise ConfigError.invalid(
            "space.params",
            section["params"],
            "no inline parameters: the search trains models, so the space must be a "
            "registered space that builds networks",
            hint="use mlp, cnn or nb201, or register your own space (docs/registry.md)",
        )
    name, spec = named(section, "space")
    check_fields(spec, "space", _SPACE_FIELDS)
    check_registered("space", name, "space.name")
    options = kwargs(spec.get("options"), "space.options")
    return _build_field("space.options", "space", name, **options)


# --------------------------------------------------------------------------- sections
def _space_section(section: Any) -> tuple[Space, dict[str, Any]]:
    """The space and its ``build_options`` (names checked against ``Space.build``)."""
    space = space_from_config(section)
    value = section.get("build_options") if isinstance(section, dict) else None
    options = kwargs(value, "space.build_options")
    params = list(inspect.signature(space.build).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return space, options
    allowed = [
        p.name
        for p in params[1:]  # the first is the arch
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.name not in ("input_shape", "num_classes")
    ]
    for key, value in options.items():
        if key in ("input_shape", "num_classes"):
            raise ConfigError.invalid(
                f"space.build_options.{key}", value, "absent: it comes from the data"
            )
        if key not in allowed:
            expected = f"one of {', '.join(allowed)}" if allowed else "absent"
            raise ConfigError.invalid(
                f"space.build_options.{key}",
                value,
                f"{expected} (the build options of space {space.name!r})",
                ("unknown option." + close_matches(key, allowed)).strip(),
            )
    return space, options


def _evaluator(section: Any) -> tuple[str, dict[str, Any]]:
    """``evaluator``: ``train``, ``supernet`` or a zero-cost proxy, and its options."""
    name, spec = named(section, "evaluator")
    check_fields(spec, "evaluator", _PLUGIN_FIELDS)
    check_registered("evaluator", name, "evaluator.name")
    name = name.lower()
    factory = registry.get("evaluator", name)
    if name not in _EVALUATORS and not _is_proxy(factory):
        raise ConfigError.invalid(
            "evaluator.name",
            name,
            f"one of {', '.join(_evaluator_names())}",
            hint=f"{name!r} does not score archs from the config's data; use it from Python "
            "with nf.search(space, evaluator, ...)",
        )
    return name, _plugin_options(factory, spec.get("options"), "evaluator.options")


def _warm_start(section: Any) -> WarmStart | None:
    """``warm_start``: a proxy's name, or ``{proxy: ..., pool: ..., top: ..., options: ...}``."""
    if section is None:
        return None
    spec = {"proxy": section} if isinstance(section, str) else section
    spec = check_fields(spec, "warm_start", _WARM_START_FIELDS)
    proxy = spec.get("proxy")
    proxies = [n for n in _evaluator_names() if n not in _EVALUATORS]
    if not isinstance(proxy, str):
        raise ConfigError.invalid(
            "warm_start.proxy", proxy, f"the name of a zero-cost proxy: {', '.join(proxies)}"
        )
    check_registered("evaluator", proxy, "warm_start.proxy")
    factory = registry.get("evaluator", proxy)
    if not _is_proxy(factory):
        raise ConfigError.invalid("warm_start.proxy", proxy, f"one of {', '.join(proxies)}")
    pool = check_int(spec.get("pool", 100), "warm_start.pool", low=1)
    top = check_int(spec.get("top", 10), "warm_start.top", low=1)
    if top > pool:
        raise ConfigError.invalid("warm_start.top", top, f"at most warm_start.pool ({pool})")
    options = _plugin_options(factory, spec.get("options"), "warm_start.options")
    return WarmStart(proxy.lower(), pool, top, options)


def _trackers(section: Any) -> tuple[tuple[str, dict[str, Any]], ...]:
    """``trackers``: a list of registered trackers, each a name or ``{name, options}``."""
    if section is None:
        return ()
    if not isinstance(section, list):
        raise ConfigError.invalid(
            "trackers",
            section,
            "a list of trackers",
            hint="e.g. [{name: tensorboard, options: {log_dir: tb}}]",
        )
    trackers = []
    for i, item in enumerate(section):
        name, spec = named(item, f"trackers[{i}]")
        check_fields(spec, f"trackers[{i}]", _PLUGIN_FIELDS)
        check_registered("tracker", name, f"trackers[{i}].name")
        factory = registry.get("tracker", name)
        options = _plugin_options(factory, spec.get("options"), f"trackers[{i}].options", ())
        trackers.append((name.lower(), options))
    return tuple(trackers)


def _darts(section: Any) -> dict[str, Any] | None:
    """``darts``: the options of :class:`~nasforge.oneshot.Darts` (true: its defaults)."""
    if section is None or section is False:
        return None
    if section is True:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError.invalid("darts", section, "a mapping of DARTS options, or true")
    reserved = tuple(k for k in _SET_BY_CONFIG if k != "val_fraction")
    return _plugin_options(Darts, section, "darts", reserved)


def _retrain(section: Any, training: TrainConfig) -> TrainConfig | None:
    """``retrain``: true (the ``training`` options) or the options that differ from them."""
    if section is None or section is False:
        return None
    if section is not True and not isinstance(section, dict):
        raise ConfigError.invalid(
            "retrain", section, "true, false, or a mapping of training options"
        )
    options = {} if section is True else section
    for key in options:
        if key not in TrainConfig.FIELDS:
            hint = ("unknown option." + close_matches(str(key), TrainConfig.FIELDS)).strip()
            if key == "val_fraction":
                hint = "retraining splits the data as training.val_fraction says"
            raise ConfigError.invalid(
                f"retrain.{key}",
                options[key],
                f"one of the training options {', '.join(TrainConfig.FIELDS)}",
                hint,
            )
    config = TrainConfig.from_dict({**training.to_dict(), **options}, field="retrain")
    if config.lr_schedule == "onecycle":
        raise ConfigError.invalid(
            "retrain.lr_schedule",
            "onecycle",
            "'cosine', 'step' or None when retraining",
            hint="retraining trains as the training evaluator does; set "
            "retrain.lr_schedule: cosine",
        )
    return config


def _refuse_search_fields(raw: dict[str, Any]) -> None:
    for name in _SEARCH_ONLY:
        if name in raw:
            hint = (
                "DARTS's randomness is training.seed"
                if name == "seed"
                else "a DARTS run trains one supernet and derives the arch by gradient: it "
                "has no trials to search, evaluate or schedule; remove the field, or the "
                "darts section for an ask/tell search"
            )
            raise ConfigError.invalid(name, raw[name], "absent in a DARTS run", hint=hint)


def _plugin_options(
    factory: Any, value: Any, name: str, reserved: Sequence[str] = _SET_BY_CONFIG
) -> dict[str, Any]:
    """``value`` as keyword options of ``factory``: the names its signature takes, less
    those the config's sections set (``reserved``); known values checked too."""
    options = kwargs(value, name)
    params = inspect.signature(factory).parameters.values()
    allowed = [
        p.name
        for p in params
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in reserved
    ]
    for key in list(options):
        if key not in allowed:
            raise ConfigError.invalid(
                f"{name}.{key}",
                options[key],
                f"one of the options {', '.join(allowed)}" if allowed else "absent: no options",
                _option_hint(key, allowed),
            )
        check = _OPTION_CHECKS.get(key)
        if check is not None:
            options[key] = check(options[key], f"{name}.{key}")
    return options


def _option_hint(key: str, allowed: Sequence[str]) -> str | None:
    if key in ("input_shape", "num_classes"):
        return "it comes from the data"
    if key == "build_options":
        return "set space.build_options"
    if key in TrainConfig.FIELDS or key in _EVALUATOR_OPTIONS:
        return f"set training.{key}: the training section holds the training options"
    if key in _SET_BY_CONFIG:
        return "the config's own sections set it"
    return ("unknown option." + close_matches(key, allowed)).strip() or None


def _check_evaluator(config: SearchConfig) -> None:
    name = config.evaluator[0]
    if name == "train":
        if config.training.lr_schedule == "onecycle":
            raise ConfigError.invalid(
                "training.lr_schedule",
                "onecycle",
                "'cosine', 'step' or None with the train evaluator",
                hint="'onecycle' steps every batch, so a trial could not be continued at a "
                "larger budget; use 'cosine'",
            )
        return
    if config.scheduler is not None:
        raise ConfigError.invalid(
            "scheduler",
            config.scheduler,
            f"absent with evaluator {name!r}",
            hint="a scheduler gives trials budgets of epochs, and only the train evaluator "
            "trains trials",
        )
    if name == "supernet":
        _check_supernet_space(config.space, "evaluator.name")
    if name == "compression" and not isinstance(config.space, CompressedSpace):
        raise ConfigError.invalid(
            "space.name",
            config.space.name,
            "'compressed' with evaluator 'compression'",
            hint="e.g. space: {name: compressed, options: {base: cnn, prune: [0.0, 0.5]}}",
        )


def _check_darts(config: SearchConfig) -> None:
    assert config.darts is not None
    _check_supernet_space(config.space, "darts")
    exclude = config.darts.get("exclude")
    if exclude is None:
        return
    choices = [p for p in config.space.params if isinstance(p, Choice)]
    values = {repr(v) for p in choices for v in p.choices}
    for value in exclude:
        if repr(value) not in values:
            raise ConfigError.invalid(
                "darts.exclude", value, f"a value of the choices of space {config.space.name!r}"
            )
    for param in choices:
        if all(v in exclude for v in param.choices):
            raise ConfigError.invalid(
                "darts.exclude", exclude, f"a list that leaves a value of {param.name!r}"
            )


def _check_supernet_space(space: Space, name: str) -> None:
    if type(space).supernet is Space.supernet:
        raise ConfigError(
            f"{name}: space {space.name!r} has no supernet. HINT: use the nb201 space, or "
            "a space of your own that implements Space.supernet() (docs/oneshot.md)",
            field=name,
        )


def _default_objective(evaluator: str) -> str:
    return "val_acc" if evaluator in _EVALUATORS else str(_proxy_class(evaluator).name)


def _is_proxy(factory: Any) -> bool:
    return isinstance(factory, type) and issubclass(factory, ZeroCostProxy)


def _proxy_class(name: str) -> type[ZeroCostProxy]:
    factory = registry.get("evaluator", name)
    assert _is_proxy(factory)
    return factory


def _evaluator_names() -> list[str]:
    proxies = [
        n for n in registry.available("evaluator") if _is_proxy(registry.get("evaluator", n))
    ]
    return [*_EVALUATORS, *proxies]


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


def _data(section: Any) -> tuple[str, dict[str, Any]]:
    name, spec = named(section, "data")
    check_fields(spec, "data", _PLUGIN_FIELDS)
    check_dataset_name(name, "data.name")
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
    if ":" not in name or name.startswith(TORCHVISION_PREFIX):
        try:
            registered, options = dataset_call(name, options)
        except ConfigError as exc:
            raise exc.within("data.options") from None
        return _build_field("data.options", "dataset", registered, **options)
    builder = resolve_builder(name, field="data.name")
    return call_user(builder, options, "data.options", name=name)
