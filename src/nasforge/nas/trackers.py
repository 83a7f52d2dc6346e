"""Experiment trackers: TensorBoard and MLflow, each a Trainer callback and a search callback.

One tracker object serves both roles::

    tb = nf.TensorBoardTracker("runs")
    nf.Trainer(data, epochs=5, callbacks=[tb]).fit(model)          # per-epoch scalars
    nf.search(space, evaluator, budget=20, callbacks=[tb])          # per-trial hparams

As a Trainer callback a tracker records every number of each epoch's record (what
:class:`~nasforge.History` holds: ``train_loss``, ``val_accuracy``, ``lr``...; step = the
1-based epoch). As a search callback it records, per trial, the arch's choices and the
final metrics, from the search's own process (trials trained in worker processes report
their final metrics only; their per-epoch curves are not recorded). Infeasible trials are
not recorded. A tracker never stops training or a search: a failing call is a
:class:`~nasforge.CallbackWarning` and the work goes on. Both are registered as
``tracker`` plugins (``tensorboard``, ``mlflow``), so ``nasforge search`` configs name them
in ``trackers:``. docs/trackers.md has the details.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError, MissingDependencyError
from nasforge.nas.callbacks import SearchCallback, SearchInfo, report_failure
from nasforge.nas.result import SearchResult, Trial, TrialStatus
from nasforge.registry import register
from nasforge.train.callbacks import Callback, TrainState
from nasforge.validation import check_bool, check_str

if TYPE_CHECKING:
    from nasforge.train.engine import Engine

__all__ = ["MLflowTracker", "TensorBoardTracker", "Tracker"]

#: The run directory (TensorBoard) or run name (MLflow) of trial ``n``.
TRIAL_RUN = "trial-{:04d}"


class Tracker(Callback, SearchCallback):
    """Base class of experiment trackers: a Trainer :class:`~nasforge.Callback` and a
    :class:`~nasforge.SearchCallback` (see the module docstring).

    A subclass implements :meth:`fit_begin`, :meth:`epoch_end` and :meth:`fit_end` for the
    Trainer (they run guarded: an exception is a warning, training goes on) and the
    :class:`~nasforge.SearchCallback` hooks for searches (the search loop guards those).
    """

    def __init__(self) -> None:
        self._reported: set[str] = set()

    @classmethod
    def anchor_options(cls, options: Mapping[str, Any], directory: Path) -> dict[str, Any]:
        """``options`` with relative paths made relative to ``directory`` (``nasforge
        search`` anchors them to its output directory); other options unchanged."""
        return dict(options)

    # The Trainer hooks, guarded.
    def on_fit_begin(self, trainer: Engine, state: TrainState) -> None:
        self._guard("on_fit_begin", self.fit_begin, trainer, state)

    def on_epoch_end(self, trainer: Engine, state: TrainState) -> None:
        epoch = int(state.metrics.get("epoch", state.epoch + 1))
        self._guard("on_epoch_end", self.epoch_end, epoch, _numbers(state.metrics, ("epoch",)))

    def on_fit_end(self, trainer: Engine, state: TrainState) -> None:
        self._guard("on_fit_end", self.fit_end)

    def fit_begin(self, trainer: Engine, state: TrainState) -> None:
        """A fit begins."""

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """Epoch ``epoch`` (1-based) ended with ``metrics`` (finite numbers only)."""

    def fit_end(self) -> None:
        """The fit ended."""

    def _guard(self, hook: str, action: Callable[..., None], *args: Any) -> None:
        try:
            action(*args)
        except Exception as exc:
            report_failure(self, hook, exc, self.__dict__.setdefault("_reported", set()))


@register("tracker", "tensorboard")
class TensorBoardTracker(Tracker):
    """TensorBoard event files: per-epoch scalars of a fit; per-trial hparams and metrics
    of a search.

    As a Trainer callback: each epoch's numbers as scalars in ``log_dir`` (step = epoch).
    As a search callback: each trial is a run ``log_dir/trial-0007`` holding the arch's
    choices as hparams and the final metrics as scalars (the HParams tab compares them),
    and ``log_dir`` gets each trial's objective values (``search/<objective>``, step =
    trial number) and, with one objective, the best so far (``search/best_<objective>``).
    Give each search its own ``log_dir``; a resumed search skips the trials whose run
    directories exist. Needs ``pip install "nasforge[tensorboard]"``.
    """

    def __init__(self, log_dir: str | os.PathLike[str] = "runs") -> None:
        super().__init__()
        self.log_dir = _check_path(log_dir, "TensorBoardTracker.log_dir")
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingDependencyError(
                "tensorboard", extra="tensorboard", purpose="to log to TensorBoard"
            ) from None
        self._writer_class = SummaryWriter
        self._fit_writer: Any = None
        self._search_writer: Any = None
        self._info: SearchInfo | None = None
        self._best: float | None = None

    @classmethod
    def anchor_options(cls, options: Mapping[str, Any], directory: Path) -> dict[str, Any]:
        options = dict(options)
        log_dir = options.get("log_dir", "runs")
        if isinstance(log_dir, str | os.PathLike):
            options["log_dir"] = Path(directory) / log_dir  # an absolute path stays
        return options

    # ------------------------------------------------------------------ Trainer
    def fit_begin(self, trainer: Engine, state: TrainState) -> None:
        self._fit_writer = self._writer_class(str(self.log_dir))

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        if self._fit_writer is None:
            return
        for name, value in metrics.items():
            self._fit_writer.add_scalar(name, value, epoch)
        self._fit_writer.flush()

    def fit_end(self) -> None:
        if self._fit_writer is not None:
            self._fit_writer.close()
            self._fit_writer = None

    # ------------------------------------------------------------------ search
    def on_search_begin(self, info: SearchInfo) -> None:
        self._info, self._best = info, None
        self._search_writer = self._writer_class(str(self.log_dir))

    def on_trial_end(self, trial: Trial, replayed: bool) -> None:
        if trial.status is TrialStatus.INFEASIBLE:
            return
        metrics = _numbers(trial.metrics)
        run = self.log_dir / TRIAL_RUN.format(trial.number)
        written = replayed and run.exists()  # by the run this one resumes
        if not written:
            from torch.utils.tensorboard.summary import hparams

            _, start, end = hparams(_hparams(trial.arch), metrics)
            with self._writer_class(str(run)) as writer:
                writer.file_writer.add_summary(start)
                writer.file_writer.add_summary(end)
                for name, value in metrics.items():
                    writer.add_scalar(name, value, 0)
                writer.add_text("key", trial.key, 0)
        self._log_progress(trial, metrics, write=not written)

    def _log_progress(self, trial: Trial, metrics: dict[str, float], *, write: bool) -> None:
        """The trial's objective values in ``log_dir``, and the best so far."""
        info, writer = self._info, self._search_writer
        if info is None or writer is None or not trial.finished:
            return
        name = info.objectives[0]
        best = None
        if len(info.objectives) == 1 and name in metrics:
            value = metrics[name]
            if self._best is None or (value > self._best) == (info.modes[0] == "max"):
                self._best = value
            best = self._best
        if not write:
            return
        for objective in info.objectives:
            if objective in metrics:
                writer.add_scalar(f"search/{objective}", metrics[objective], trial.number)
        if best is not None:
            writer.add_scalar(f"search/best_{name}", best, trial.number)
        writer.flush()

    def on_search_end(self, result: SearchResult, error: BaseException | None) -> None:
        if self._search_writer is not None:
            self._search_writer.close()
            self._search_writer = None

    def __repr__(self) -> str:
        return f"TensorBoardTracker(log_dir={str(self.log_dir)!r})"


@register("tracker", "mlflow")
class MLflowTracker(Tracker):
    """MLflow runs: one per fit (per-epoch metrics); one per search, with a nested run per
    trial (the arch's choices as params, the final metrics) and the results as artifacts.

    ``tracking_uri``: where runs are stored, e.g. ``"sqlite:///mlflow.db"`` or a server's
    URL (None: MLflow's default, ``$MLFLOW_TRACKING_URI`` or ``./mlruns``).
    ``experiment``: the experiment's name (created when missing). ``artifact_location``:
    where a new experiment keeps artifacts (default: ``mlartifacts/`` beside a SQLite
    database, else MLflow's default). ``run_name``: the name of the search's (or fit's)
    run. ``log_artifacts``: when a search ends, log what :meth:`SearchResult.save` writes
    under ``result/`` (``trials.csv``, ``best.json``, and ``best_model.pt`` when the
    evaluator can ``load_model``: from its checkpoints with ``checkpoint_dir``, else
    trained again). A resumed search continues its first run (found by the journal's
    path) and logs only the trials not logged yet. Needs ``pip install "nasforge[mlflow]"``.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str = "nasforge",
        *,
        artifact_location: str | None = None,
        run_name: str | None = None,
        log_artifacts: bool = True,
    ) -> None:
        super().__init__()
        self.tracking_uri = check_str(tracking_uri, "MLflowTracker.tracking_uri", optional=True)
        self.experiment = check_str(experiment, "MLflowTracker.experiment")
        self.artifact_location = check_str(
            artifact_location, "MLflowTracker.artifact_location", optional=True
        )
        self.run_name = check_str(run_name, "MLflowTracker.run_name", optional=True)
        self.log_artifacts = check_bool(log_artifacts, "MLflowTracker.log_artifacts")
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise MissingDependencyError(
                "mlflow", extra="mlflow", purpose="to log to MLflow"
            ) from None
        self._client_class = MlflowClient
        self._client: Any = None
        self._experiment_id: str | None = None
        self._fit_run: str | None = None
        self._search_run: str | None = None
        self._info: SearchInfo | None = None
        self._logged: set[int] = set()

    @classmethod
    def anchor_options(cls, options: Mapping[str, Any], directory: Path) -> dict[str, Any]:
        options = dict(options)
        for name in ("tracking_uri", "artifact_location"):
            value = options.get(name)
            if isinstance(value, str) and value:
                options[name] = _anchor_uri(value, Path(directory))
        return options

    @property
    def client(self) -> Any:
        """The ``mlflow.tracking.MlflowClient`` (made on first use)."""
        if self._client is None:
            self._client = self._client_class(tracking_uri=self.tracking_uri)
        return self._client

    def experiment_id(self) -> str:
        """The id of :attr:`experiment`, created (with ``artifact_location``) if missing."""
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                location = self.artifact_location or _beside_database(self.tracking_uri)
                self._experiment_id = self.client.create_experiment(
                    self.experiment, artifact_location=location
                )
            else:
                self._experiment_id = found.experiment_id
        return self._experiment_id

    # ------------------------------------------------------------------ Trainer
    def fit_begin(self, trainer: Engine, state: TrainState) -> None:
        name = self.run_name or f"fit-{type(state.model).__name__}"
        run = self.client.create_run(
            self.experiment_id(), run_name=name, tags={"nasforge.kind": "fit"}
        )
        self._fit_run = run.info.run_id
        params = {**trainer.config.describe(), "model": type(state.model).__name__}
        self._log(self._fit_run, params=params)

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        if self._fit_run is not None:
            self._log(self._fit_run, metrics=metrics, step=epoch)

    def fit_end(self) -> None:
        if self._fit_run is not None:
            run, self._fit_run = self._fit_run, None
            self.client.set_terminated(run, "FINISHED")

    # ------------------------------------------------------------------ search
    def on_search_begin(self, info: SearchInfo) -> None:
        self._info, self._logged = info, set()
        parent = self._earlier_run(info) if info.resumed else None
        if parent is not None:
            self._search_run = parent
            self.client.update_run(parent, status="RUNNING")
            self._logged = self._logged_trials(parent)
            return
        tags = {"nasforge.kind": "search"}
        if info.journal is not None:
            tags["nasforge.journal"] = str(info.journal)
        name = self.run_name or f"search-{info.space.name}-{info.strategy}"
        run = self.client.create_run(self.experiment_id(), run_name=name, tags=tags)
        self._search_run = run.info.run_id
        self._log(self._search_run, params=info.describe())

    def on_trial_end(self, trial: Trial, replayed: bool) -> None:
        parent = self._search_run
        if parent is None or trial.status is TrialStatus.INFEASIBLE:
            return
        if trial.number in self._logged:
            return
        started = int((trial.started or time.time()) * 1000)
        tags = {
            "mlflow.parentRunId": parent,
            "nasforge.trial": str(trial.number),
            "nasforge.key": trial.key[:5000],
            "nasforge.status": trial.status.value,
        }
        if trial.error:
            tags["nasforge.error"] = trial.error[-5000:]
        child = self.client.create_run(
            self.experiment_id(),
            run_name=TRIAL_RUN.format(trial.number),
            start_time=started,
            tags=tags,
        ).info.run_id
        metrics = {**_numbers(trial.metrics), "trial_duration": float(trial.duration)}
        self._log(child, params=dict(trial.arch), metrics=metrics)
        status = "FINISHED" if trial.finished else "FAILED"
        self.client.set_terminated(child, status, end_time=started + int(trial.duration * 1000))
        self._logged.add(trial.number)
        if self._info is not None and trial.finished:
            objectives = {n: metrics[n] for n in self._info.objectives if n in metrics}
            self._log(parent, metrics=objectives, step=trial.number)

    def on_search_end(self, result: SearchResult, error: BaseException | None) -> None:
        run, self._search_run = self._search_run, None
        if run is None:
            return
        interrupted = isinstance(error, KeyboardInterrupt) or any(
            t.status is TrialStatus.INTERRUPTED for t in result.trials
        )
        status = "KILLED" if interrupted else "FAILED" if error is not None else "FINISHED"
        try:
            best = result.best
            if best is not None:
                metrics = {f"best_{k}": v for k, v in _numbers(best.metrics).items()}
                tags = {"nasforge.best_trial": str(best.number), "nasforge.best_key": best.key}
                self._log(run, metrics=metrics, tags=tags)
            if status == "FINISHED" and self.log_artifacts:
                with tempfile.TemporaryDirectory(prefix="nasforge-mlflow-") as folder:
                    result.save(folder)
                    self.client.log_artifacts(run, folder, artifact_path="result")
        finally:
            self.client.set_terminated(run, status)

    # ------------------------------------------------------------------ helpers
    def _earlier_run(self, info: SearchInfo) -> str | None:
        """The run of the search a resumed one continues: the latest with its journal."""
        journal = None if info.journal is None else str(info.journal)
        if journal is None or "'" in journal:
            return None
        runs = self.client.search_runs(
            [self.experiment_id()],
            filter_string=f"tags.`nasforge.journal` = '{journal}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def _logged_trials(self, parent: str) -> set[int]:
        """The trial numbers of the nested runs of ``parent``."""
        numbers: set[int] = set()
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id()],
                filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
                max_results=1000,
                page_token=token,
            )
            numbers.update(
                int(r.data.tags["nasforge.trial"])
                for r in page
                if r.data.tags.get("nasforge.trial", "").isdigit()
            )
            token = page.token
            if not token:
                return numbers

    def _log(
        self,
        run: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        step: int = 0,
    ) -> None:
        """One ``log_batch`` per 100 params/tags or 1000 metrics (MLflow's limits)."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        param_list = [Param(_key(k), str(v)[:500]) for k, v in (params or {}).items()]
        metric_list = [Metric(_key(k), v, now, step) for k, v in (metrics or {}).items()]
        tag_list = [RunTag(k, v) for k, v in (tags or {}).items()]
        batches = max(
            -(-len(param_list) // 100), -(-len(metric_list) // 1000), -(-len(tag_list) // 100)
        )
        for b in range(batches):
            self.client.log_batch(
                run,
                metrics=metric_list[b * 1000 : (b + 1) * 1000],
                params=param_list[b * 100 : (b + 1) * 100],
                tags=tag_list[b * 100 : (b + 1) * 100],
            )

    def __repr__(self) -> str:
        return f"MLflowTracker(tracking_uri={self.tracking_uri!r}, experiment={self.experiment!r})"


# ------------------------------------------------------------------------------- helpers
def _check_path(value: Any, field: str) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ConfigError.invalid(field, value, "a directory path")
    return Path(value)


def _numbers(metrics: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, float]:
    """The finite numbers of ``metrics`` as floats (NaN, infinities and non-numbers left
    out), less the names in ``skip``."""
    out = {}
    for name, value in metrics.items():
        if name in skip or isinstance(value, bool):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[name] = number
    return out


def _hparams(arch: Mapping[str, Any]) -> dict[str, Any]:
    """An arch's choices as TensorBoard hparams (bools, numbers and strings; others as text)."""
    return {k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in arch.items()}


_KEY_CHARS = re.compile(r"[^\w\-. /]")


def _key(name: str) -> str:
    """``name`` as an MLflow param or metric key (letters, digits, ``_-. /`` only)."""
    return _KEY_CHARS.sub("_", str(name))


def _anchor_uri(value: str, directory: Path) -> str:
    """A tracking URI or artifact location with a relative local path made relative to
    ``directory``: ``sqlite:///mlflow.db`` and plain paths; other URIs unchanged."""
    if value.startswith("sqlite:///"):
        path = value[len("sqlite:///") :]
        if path and not path.startswith("/") and path != ":memory:":
            return f"sqlite:///{(directory / path).resolve()}"
        return value
    if "://" in value or value.startswith("file:"):
        return value
    return str(directory / value)


def _beside_database(tracking_uri: str | None) -> str | None:
    """``mlartifacts/`` next to a local SQLite database (None for other stores)."""
    if tracking_uri is None or not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri[len("sqlite:///") :]
    if not path or path == ":memory:":
        return None
    return str((Path(path).parent / "mlartifacts").resolve())
