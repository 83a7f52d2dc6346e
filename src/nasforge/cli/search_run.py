"""Running ``nasforge search``: :func:`run` does what the command does with a checked
:class:`~nasforge.cli.search.SearchConfig`: the search (:func:`run_search`) or the DARTS run
(:func:`run_darts`), then the retraining (:func:`run_retrain`), all written into one
directory. Reading and checking the config is :mod:`nasforge.cli.search`, which re-exports
these names (loaded on first use; it never imports this module).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# cli_search._load_data is looked up at call time, so that patching it on
# nasforge.cli.search (as the tests do, to prove nothing loads before the config is
# checked) reaches the loads here too.
from nasforge import registry
from nasforge.cli import search as cli_search
from nasforge.cli.search import SearchConfig, _build_field
from nasforge.data.splits import prepare_splits
from nasforge.errors import CheckpointError, ConfigError
from nasforge.evaluators.compression import CompressionEvaluator
from nasforge.evaluators.proxies import ZeroCostProxy
from nasforge.evaluators.supernet import SupernetEvaluator
from nasforge.evaluators.training import TrainEvaluator, retrain
from nasforge.export import save_model
from nasforge.nas.evaluator import Evaluator
from nasforge.nas.loop import search
from nasforge.nas.result import SearchResult, TrialStatus
from nasforge.oneshot.darts import Darts
from nasforge.space.base import Arch
from nasforge.train.config import TrainConfig

__all__ = ["RunOutcome", "build_evaluator", "run", "run_darts", "run_retrain", "run_search"]

#: The name ``nasforge search`` has always logged under (``nasforge -v`` prints it).
logger = logging.getLogger("nasforge.cli.search")

#: Options that do not change what a supernet learns (not compared on resume).
_NOT_SETTINGS = ("eval_batch_size", "device", "progress", "num_workers")
SUPERNET_FILE = "supernet.pt"
DARTS_FILE = "darts.json"
RETRAINED_FILE = "retrained.json"
RETRAINED_MODEL = "retrained_model.pt"
WARM_START_FILE = "warm_start.json"


@dataclass
class RunOutcome:
    """What :func:`run` did: the ``search`` (or the ``darts`` record, ``darts.json``;
    ``darts_reused`` when ``--resume`` kept an existing one) and the ``retrained`` record
    (``retrained.json``, None without ``retrain`` or without a best trial)."""

    out: Path
    search: SearchResult | None = None
    darts: dict[str, Any] | None = None
    darts_reused: bool = False
    retrained: dict[str, Any] | None = None

    @property
    def interrupted(self) -> bool:
        """Whether the search was interrupted (Ctrl-C): then nothing was retrained."""
        trials = self.search.trials if self.search is not None else []
        return any(t.status is TrialStatus.INTERRUPTED for t in trials)


def run(
    config: SearchConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool | None = None,
) -> RunOutcome:
    """Do what ``nasforge search`` does: the search (or the DARTS run) of ``config``, then
    the retraining it asks for, writing everything into ``out``."""
    outcome = RunOutcome(Path(out))
    if config.darts is not None:
        reuse = _darts_output(config, outcome.out, resume)
        data = None if reuse and config.retrain is None else cli_search._load_data(*config.data)
        outcome.darts = run_darts(config, outcome.out, resume=resume, progress=progress, data=data)
        outcome.darts_reused = reuse
        arch = config.space.arch(outcome.darts["arch"])
        source: dict[str, Any] = {"kind": "darts", "file": DARTS_FILE}
    else:
        _journal_for(config, outcome.out, resume)
        data = cli_search._load_data(*config.data)
        outcome.search = run_search(
            config, outcome.out, resume=resume, progress=progress, data=data
        )
        best = outcome.search.best
        if outcome.interrupted or best is None or config.retrain is None:
            return outcome
        arch, source = best.arch, {"kind": "search", "trial": best.number}
    if config.retrain is not None:
        outcome.retrained = run_retrain(config, arch, outcome.out, data=data, source=source)
    return outcome


def run_search(
    config: SearchConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool | None = None,
    data: Any = None,
) -> SearchResult:
    """Run the search of ``config``, writing the journal and the results into ``out``
    (what :meth:`SearchResult.save` writes, with ``space.build_options`` in
    ``best.json``). ``data``: the config's data, already loaded (default: load it)."""
    if config.darts is not None:
        raise ConfigError(
            "the config describes a DARTS run (a darts section). HINT: use run_darts(), or "
            "run() for what nasforge search does",
            field="darts",
        )
    out = Path(out)
    journal = _journal_for(config, out, resume)
    if data is None:
        data = cli_search._load_data(*config.data)
    _check_build(config, data)  # before the warm start writes anything
    warm = _warm_start_archs(config, data, out, progress)
    evaluator = build_evaluator(
        config,
        out / "checkpoints",
        data=data,
        supernet_checkpoint=out / SUPERNET_FILE,
        progress=progress,
    )
    out.mkdir(parents=True, exist_ok=True)
    result = search(
        config.space,
        evaluator,
        journal=journal,
        resume=resume and journal is not None,
        progress=progress,
        warm_start=warm,
        callbacks=_trackers(config, out),
        **config.search_options(),
    )
    result.save(out)
    return result


def build_evaluator(
    config: SearchConfig,
    checkpoint_dir: Path | None,
    *,
    data: Any = None,
    supernet_checkpoint: Path | None = None,
    progress: bool | None = None,
) -> Evaluator:
    """Load the data (unless given) and build the evaluator of ``config``: a training
    evaluator checkpointing trials in ``checkpoint_dir``, a supernet evaluator whose
    supernet trains here, checkpointed at ``supernet_checkpoint``, or a zero-cost proxy."""
    if data is None:
        data = cli_search._load_data(*config.data)
    _check_build(config, data)
    name, options = config.evaluator
    if name in ("train", "compression"):
        evaluator = TrainEvaluator if name == "train" else CompressionEvaluator
        return evaluator(
            config.space,  # type: ignore[arg-type]  # a compressed space: checked on loading
            data,
            config=config.training,
            latency=config.latency if config.latency is not None else False,
            val_fraction=config.val_fraction,
            checkpoint_dir=checkpoint_dir,
            build_options=config.build_options,
            **options,
        )
    if name == "supernet":
        if supernet_checkpoint is not None:
            _check_checkpoint_settings(config, Path(supernet_checkpoint))
        return SupernetEvaluator(
            config.space,
            data,
            config=_with_progress(config.training, progress),
            checkpoint=supernet_checkpoint,
            build_options=config.build_options,
            val_fraction=config.val_fraction,
            **options,
        )
    return _proxy(config, name, options, data, "evaluator.options")


def run_darts(
    config: SearchConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool | None = None,
    data: Any = None,
) -> dict[str, Any]:
    """Run the DARTS of ``config`` and write ``out/darts.json``, which it returns: the
    derived arch's ``key`` and values (``arch``), the softmax ``weights`` of every choice,
    the per-epoch ``history``, ``seconds``, and the ``space`` (``Space.from_dict`` rebuilds
    it), ``build_options``, ``input_shape`` and ``num_classes``. With ``resume``, an
    existing ``darts.json`` of the same settings is returned instead of searching again."""
    out = Path(out)
    if _darts_output(config, out, resume):
        return _read_json(out / DARTS_FILE)
    assert config.darts is not None
    if data is None:
        data = cli_search._load_data(*config.data)
    input_shape, num_classes = _check_build(config, data)
    darts = Darts(
        config.space,
        data,
        config=_with_progress(config.training, progress),
        build_options=config.build_options,
        **config.darts,
    )
    result = darts.run()
    record = {
        "key": result.arch.key,
        "arch": result.arch.to_dict(),
        "weights": result.weights,
        "history": result.history,
        "seconds": result.seconds,
        **_network_record(config, input_shape, num_classes),
        "settings": _settings(config),
    }
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / DARTS_FILE, record)
    return record


def run_retrain(
    config: SearchConfig,
    arch: Arch,
    out: str | os.PathLike[str],
    *,
    data: Any = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``arch`` from scratch as ``config.retrain`` says (:func:`nasforge.retrain`),
    and write ``out/retrained_model.pt`` (:func:`nasforge.save_model`) and
    ``out/retrained.json``, which it returns: ``key``, ``arch``, ``source`` (where the arch
    came from), ``metrics``, ``epochs``, and what rebuilding the model needs."""
    if config.retrain is None:
        raise ConfigError("the config has no retrain section", field="retrain")
    out = Path(out)
    if data is None:
        data = cli_search._load_data(*config.data)
    input_shape, num_classes = _check_build(config, data)
    model, metrics = retrain(
        config.space,
        arch,
        data,
        build_options=config.build_options,
        val_fraction=config.val_fraction,
        config=config.retrain,
    )
    record = {
        "key": arch.key,
        "arch": arch.to_dict(),
        "source": source or {},
        "metrics": metrics,
        "epochs": config.retrain.epochs,
        **_network_record(config, input_shape, num_classes),
    }
    metadata = {"arch": arch.to_dict(), "space": config.space.name}
    if config.build_options:
        metadata["build_options"] = config.build_options
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, out / RETRAINED_MODEL, metadata=metadata)
    _write_json(out / RETRAINED_FILE, record)
    return record


# --------------------------------------------------------------------------- run helpers
def _trackers(config: SearchConfig, out: Path) -> list[Any]:
    """The config's trackers, with relative paths in their options made relative to
    ``out`` (:meth:`~nasforge.Tracker.anchor_options`)."""
    trackers = []
    for i, (name, options) in enumerate(config.trackers):
        anchor = getattr(registry.get("tracker", name), "anchor_options", None)
        if callable(anchor):
            options = anchor(options, out)
        trackers.append(_build_field(f"trackers[{i}].options", "tracker", name, **options))
    return trackers


def _journal_path(config: SearchConfig, out: Path) -> Path | None:
    if config.journal is True:
        return out / "journal.jsonl"
    if config.journal is False:
        return None
    return out / config.journal  # an absolute path stays as it is


def _journal_for(config: SearchConfig, out: Path, resume: bool) -> Path | None:
    """The journal path, refusing ``--resume`` with nothing to resume and a new search
    over a recorded one (before any data loads)."""
    journal = _journal_path(config, out)
    recorded = journal is not None and journal.is_file()
    started = config.evaluator[0] == "supernet" and (out / SUPERNET_FILE).is_file()
    if resume and not recorded and not started:
        raise ConfigError.invalid(
            "--resume",
            str(journal),
            "an existing journal of this search",
            hint="run the search once without --resume first",
        )
    if recorded and not resume:
        raise ConfigError(
            f"{str(journal)!r} already holds a search. HINT: add --resume to continue it, "
            "or choose another --out",
            field="journal",
        )
    return journal


def _darts_output(config: SearchConfig, out: Path, resume: bool) -> bool:
    """Whether ``out`` holds the DARTS run of ``config`` to reuse (``resume``); refuses
    one without ``resume``, or one run with other settings."""
    path = out / DARTS_FILE
    if not path.is_file():
        return False
    if not resume:
        raise ConfigError(
            f"{str(path)!r} already holds a DARTS run. HINT: add --resume to keep its arch "
            "(and retrain it), or choose another --out",
            field="darts",
        )
    _compare_settings(path, _read_json(path).get("settings"), _settings(config), "a DARTS run")
    return True


def _warm_start_archs(
    config: SearchConfig, data: Any, out: Path, progress: bool | None
) -> list[Arch] | None:
    """The best ``top`` of ``pool`` archs by the warm-start proxy (recorded in
    ``out/warm_start.json``), or None without a ``warm_start`` section."""
    warm = config.warm_start
    if warm is None:
        return None
    proxy = _proxy(config, warm.proxy, warm.options, data, "warm_start.options")
    ranked = proxy.rank(pool=warm.pool, seed=config.seed, progress=progress)
    archs = ranked[: warm.top]
    logger.info("warm start: the best %d of %d archs by %s", len(archs), len(ranked), warm.proxy)
    out.mkdir(parents=True, exist_ok=True)
    scores = [{"key": a.key, **proxy.evaluate(a)} for a in archs]
    _write_json(out / WARM_START_FILE, {"proxy": warm.proxy, "pool": len(ranked), "archs": scores})
    return archs


def _proxy(
    config: SearchConfig, name: str, options: dict[str, Any], data: Any, where: str
) -> ZeroCostProxy:
    """The zero-cost proxy ``name`` on ``data`` (seed: the config's, unless ``options``
    set one), building networks with the config's build options."""
    return _build_field(
        where,
        "evaluator",
        name,
        space=config.space,
        data=data,
        build_options=config.build_options,
        **{"seed": config.seed, **options},
    )


def _check_build(config: SearchConfig, data: Any) -> tuple[tuple[int, ...], int]:
    """The data's sample shape and class count; with build options, one network of the
    space built with them, so that a bad value fails before anything trains or is written."""
    splits = prepare_splits(data, val_fraction=config.val_fraction, seed=config.training.seed)
    shape, classes = tuple(splits.input_shape), splits.num_classes
    if config.build_options:
        arch = config.space.sample(0)
        try:
            config.space.build(arch, input_shape=shape, num_classes=classes, **config.build_options)
        except ConfigError as exc:
            raise exc.within("space.build_options") from None
        except Exception as exc:
            raise ConfigError(
                f"space.build_options: building {arch.key!r} with {config.build_options!r} "
                f"raised {type(exc).__name__}: {exc}",
                field="space.build_options",
            ) from None
    return shape, classes


def _check_checkpoint_settings(config: SearchConfig, checkpoint: Path) -> None:
    """Refuse to continue a supernet checkpoint trained with other settings (recorded next
    to it, in ``supernet.json``); record them for a new one."""
    path = checkpoint.with_suffix(".json")
    settings = _settings(config)
    if checkpoint.is_file() and path.is_file():
        _compare_settings(checkpoint, _read_json(path), settings, "a supernet trained")
    else:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, settings)


def _settings(config: SearchConfig) -> dict[str, Any]:
    """What a supernet's (or DARTS's) training depends on, by config field."""
    training = config.training.describe()
    settings: dict[str, Any] = {
        "space": config.space.to_dict(),
        "space.build_options": config.build_options,
        "data": {"name": config.data[0], "options": config.data[1]},
        "training": {k: v for k, v in training.items() if k not in _NOT_SETTINGS},
    }
    if config.darts is not None:  # DARTS splits the data as darts.val_fraction says
        settings["darts"] = config.darts
    else:
        settings["training.val_fraction"] = config.val_fraction
    return json.loads(json.dumps(settings, default=repr))  # as read back from JSON


def _compare_settings(path: Path, saved: Any, settings: dict[str, Any], what: str) -> None:
    saved = saved if isinstance(saved, dict) else {}
    changed = [k for k in settings if saved.get(k) != settings[k]]
    if changed:
        raise ConfigError(
            f"{str(path)!r} holds {what} with other settings ({', '.join(changed)} "
            "differ). HINT: use the config it was made with, or another --out",
            field=changed[0],
        )


def _network_record(
    config: SearchConfig, input_shape: tuple[int, ...], num_classes: int
) -> dict[str, Any]:
    """What rebuilding a network of the arch needs (as in ``best.json``)."""
    return {
        "space": config.space.to_dict(),
        "build_options": config.build_options,
        "input_shape": list(input_shape),
        "num_classes": num_classes,
    }


def _with_progress(training: TrainConfig, progress: bool | None) -> TrainConfig:
    return training if progress is None else training.replace(progress=progress)


def _write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as JSON atomically (a crash leaves the old file or the new one)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=repr))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{str(path)!r} cannot be read ({exc}). HINT: delete it, or choose another --out"
        ) from exc
    if not isinstance(value, dict):
        raise CheckpointError(f"{str(path)!r} does not hold a JSON object. HINT: delete it")
    return value
