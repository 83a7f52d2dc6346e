"""Search callbacks and the experiment trackers (TensorBoard, MLflow): what they write is
read back with TensorBoard's EventAccumulator and an MLflow client on a SQLite store."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import nasforge as nf
from nasforge.cli import main
from nasforge.cli.search import load_search_config
from nasforge.nas import TrialStatus
from nasforge.space import Choice, IntRange, Space


def toy_space() -> Space:
    return Space([Choice("op", ["a", "b", "c"]), IntRange("n", 1, 4)], name="toy")


class Toy:
    """Metrics without training (``fail_op`` raises)."""

    metrics = ("acc", "params")

    def __init__(self, fail_op: str | None = None) -> None:
        self.fail_op = fail_op

    def evaluate(self, arch, budget=None):
        if arch["op"] == self.fail_op:
            raise RuntimeError(f"cannot train {arch.key}")
        return {"acc": {"a": 0.5, "b": 0.7, "c": 0.6}[arch["op"]] + 0.01 * arch["n"], "params": 1.0}


def toy_search(**options):
    options = {"budget": 3, "objective": "acc", "strategy": "random", "progress": False, **options}
    return nf.search(toy_space(), options.pop("evaluator", Toy()), **options)


class Recorder(nf.SearchCallback):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_search_begin(self, info):
        self.events.append(("begin", info))

    def on_trial_end(self, trial, replayed):
        self.events.append(("trial", trial.number, trial.status, replayed))

    def on_search_end(self, result, error):
        self.events.append(("end", result, error))


# ----------------------------------------------------------------- the callback mechanism
def test_hooks_run_in_order_and_a_resumed_search_replays_recorded_trials(tmp_path):
    journal = tmp_path / "j.jsonl"
    first = Recorder()
    result = toy_search(journal=journal, callbacks=[first])
    kind, info = first.events[0]
    assert kind == "begin" and info.strategy == "random" and info.objectives == ("acc",)
    assert info.budget == 3 and info.journal == journal.resolve() and not info.resumed
    assert info.describe()["space"] == "toy"
    assert first.events[1:4] == [("trial", n, TrialStatus.FINISHED, False) for n in range(3)]
    assert first.events[4] == ("end", result, None)

    again = Recorder()
    toy_search(journal=journal, resume=True, budget=4, callbacks=[again])
    assert again.events[0][1].resumed
    assert [e[3] for e in again.events[1:5]] == [True, True, True, False]


def test_a_failing_callback_is_a_warning_and_the_search_goes_on():
    class Broken(nf.SearchCallback):
        def on_trial_end(self, trial, replayed):
            raise RuntimeError("tracker down")

    recorder = Recorder()
    with pytest.warns(nf.CallbackWarning, match="Broken.on_trial_end raised.*tracker down"):
        result = toy_search(callbacks=[Broken(), recorder])
    assert len(result.trials) == 3
    assert sum(e[0] == "trial" for e in recorder.events) == 3


def test_search_end_hook_sees_the_error_that_stops_a_search():
    recorder = Recorder()
    with pytest.raises(nf.TooManyFailuresError):
        toy_search(
            evaluator=Toy(fail_op="a"),
            seed=1,
            budget=8,
            max_consecutive_failures=1,
            callbacks=[recorder],
        )
    kind, result, error = recorder.events[-1]
    assert kind == "end" and isinstance(error, nf.TooManyFailuresError)
    assert TrialStatus.FAILED in [t.status for t in result.trials]


@pytest.mark.parametrize("callbacks", [[object()], nf.SearchCallback(), "tb"])
def test_callbacks_must_be_search_callbacks(callbacks):
    with pytest.raises(nf.ConfigError, match="callbacks"):
        toy_search(callbacks=callbacks)


# ------------------------------------------------------------------- registry and errors
def test_trackers_are_registered():
    assert nf.available("tracker") == ["mlflow", "tensorboard"]
    assert nf.get("tracker", "tensorboard") is nf.TensorBoardTracker
    assert issubclass(nf.MLflowTracker, nf.Callback) and issubclass(
        nf.MLflowTracker, nf.SearchCallback
    )


@pytest.mark.parametrize(
    ("tracker", "module", "extra"),
    [
        (nf.TensorBoardTracker, "torch.utils.tensorboard", "tensorboard"),
        (nf.MLflowTracker, "mlflow.tracking", "mlflow"),
    ],
)
def test_without_the_package_a_tracker_says_what_to_install(monkeypatch, tracker, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import` now raises ImportError
    with pytest.raises(nf.MissingDependencyError, match=rf'pip install "nasforge\[{extra}\]"'):
        tracker()


def test_relative_paths_are_anchored_to_the_output_directory(tmp_path):
    tb = nf.TensorBoardTracker.anchor_options({"log_dir": "tb"}, tmp_path)
    assert tb["log_dir"] == tmp_path / "tb"
    assert nf.TensorBoardTracker.anchor_options({}, tmp_path)["log_dir"] == tmp_path / "runs"
    anchor = nf.MLflowTracker.anchor_options
    uri = anchor({"tracking_uri": "sqlite:///m.db"}, tmp_path)["tracking_uri"]
    assert uri == f"sqlite:///{(tmp_path / 'm.db').resolve()}"
    for kept in ("sqlite:////abs/m.db", "http://localhost:5000", "file:///abs/mlruns"):
        assert anchor({"tracking_uri": kept}, tmp_path)["tracking_uri"] == kept
    assert anchor({"artifact_location": "art"}, tmp_path)["artifact_location"] == str(
        tmp_path / "art"
    )


# ------------------------------------------------------------------------- TensorBoard
def _events(directory: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory))
    accumulator.Reload()
    return accumulator


def _scalars(accumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def _hparams(accumulator) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    return {k: v.string_value or v.number_value for k, v in hparams.items()}


def test_tensorboard_records_every_epoch_of_a_fit(tmp_path, synthetic_bundle, tiny_mlp):
    pytest.importorskip("tensorboard")
    tracker = nf.TensorBoardTracker(tmp_path / "tb")
    history = nf.Trainer(synthetic_bundle, epochs=2, callbacks=[tracker], progress=False).fit(
        tiny_mlp()
    )
    events = _events(tmp_path / "tb")
    assert {"train_loss", "val_accuracy", "val_loss", "lr"} <= set(events.Tags()["scalars"])
    for tag in ("train_loss", "val_accuracy", "lr"):
        expected = history[tag]
        assert [s for s, _ in _scalars(events, tag)] == [1, 2]
        assert [v for _, v in _scalars(events, tag)] == pytest.approx(expected, rel=1e-6)


def test_tensorboard_records_each_trial_once_even_when_resumed(tmp_path):
    pytest.importorskip("tensorboard")
    log_dir, journal = tmp_path / "tb", tmp_path / "j.jsonl"
    result = toy_search(journal=journal, callbacks=[nf.TensorBoardTracker(log_dir)])
    for trial in result.trials:
        events = _events(log_dir / f"trial-{trial.number:04d}")
        assert _hparams(events) == {"op": trial.arch["op"], "n": trial.arch["n"]}
        assert _scalars(events, "acc") == [(0, pytest.approx(trial.metrics["acc"]))]
    resumed = toy_search(
        journal=journal, resume=True, budget=4, callbacks=[nf.TensorBoardTracker(log_dir)]
    )
    root = _events(log_dir)
    assert [s for s, _ in _scalars(root, "search/acc")] == [0, 1, 2, 3]  # no duplicates
    best = [v for _, v in _scalars(root, "search/best_acc")]
    assert best[-1] == pytest.approx(resumed.best.metrics["acc"])
    assert len(list((log_dir / "trial-0000").iterdir())) == 1  # not written again
    assert (log_dir / "trial-0003").is_dir()


# ------------------------------------------------------------------------------- MLflow
@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds)."""
    pytest.importorskip("mlflow")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _runs(uri: str, experiment: str) -> tuple[object, list, list]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


@pytest.mark.slow
def test_mlflow_logs_a_search_with_nested_trials_and_the_best_model(mlflow_uri, tmp_path):
    space = nf.build("space", "mlp", max_depth=1, widths=[8, 16])
    data = nf.load_dataset("synthetic", num_samples=120, input_shape=(6,))
    evaluator = nf.TrainEvaluator(space, data, epochs=1, latency=False)
    tracker = nf.MLflowTracker(mlflow_uri, "search")
    result = nf.search(
        space, evaluator, strategy="random", budget=2, progress=False, callbacks=[tracker]
    )
    client, parents, children = _runs(mlflow_uri, "search")
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.params["strategy"] == "random"
    assert parent.data.metrics["best_val_acc"] == pytest.approx(result.best.metrics["val_acc"])
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        trial = result.trials[int(child.data.tags["nasforge.trial"])]
        assert child.data.params == {k: str(v) for k, v in trial.arch.items()}
        assert child.data.metrics["val_acc"] == pytest.approx(trial.metrics["val_acc"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "result")}
    assert {"result/best_model.pt", "result/best.json", "result/trials.csv"} <= artifacts
    local = client.download_artifacts(parent.info.run_id, "result/best_model.pt", str(tmp_path))
    model = space.build(result.best.arch, input_shape=(6,), num_classes=evaluator.num_classes)
    assert isinstance(nf.load_model(local, model=model), torch.nn.Module)


@pytest.mark.slow
def test_mlflow_logs_a_fit_and_a_resumed_search_without_duplicates(
    mlflow_uri, tmp_path, synthetic_bundle, tiny_mlp
):
    tracker = nf.MLflowTracker(mlflow_uri, "fit")
    nf.Trainer(synthetic_bundle, epochs=2, callbacks=[tracker], progress=False).fit(tiny_mlp())
    client, runs, _ = _runs(mlflow_uri, "fit")
    history = client.get_metric_history(runs[0].info.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2] and runs[0].data.params["epochs"] == "2"

    journal = tmp_path / "j.jsonl"
    toy_search(journal=journal, callbacks=[nf.MLflowTracker(mlflow_uri, "resume")])
    toy_search(
        journal=journal, resume=True, budget=5, callbacks=[nf.MLflowTracker(mlflow_uri, "resume")]
    )
    _, parents, children = _runs(mlflow_uri, "resume")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(c.data.tags["nasforge.trial"]) for c in children) == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------- from YAML
CONFIG = {
    "space": {"name": "mlp", "options": {"max_depth": 1, "widths": [8, 16]}},
    "data": {"name": "synthetic", "options": {"num_samples": 120, "input_shape": [6]}},
    "strategy": "random",
    "budget": 2,
    "training": {"epochs": 1, "latency": False},
}


@pytest.mark.parametrize(
    ("trackers", "message"),
    [
        ({"name": "tensorboard"}, r"trackers must be a list of trackers"),
        (["tensorbord"], r"trackers\[0\]\.name .*Did you mean 'tensorboard'"),
        ([{"name": "tensorboard", "log_dir": "tb"}], r"trackers\[0\]\.log_dir .*unknown field"),
        ([{"name": "mlflow", "options": {"uri": "x"}}], r"trackers\[0\]\.options\.uri"),
        ([{"name": "mlflow", "options": {"experiment": 3}}], r"MLflowTracker\.experiment"),
    ],
)
def test_bad_trackers_section_fails_before_data_loads(monkeypatch, trackers, message):
    def no_data(*args):
        raise AssertionError("data loaded before the config was checked")

    monkeypatch.setattr("nasforge.cli.search._load_data", no_data)
    with pytest.raises(nf.ConfigError, match=message):
        load_search_config({**copy.deepcopy(CONFIG), "trackers": trackers})


@pytest.mark.slow
def test_nasforge_search_with_trackers_writes_into_the_output_directory(mlflow_uri, tmp_path):
    pytest.importorskip("tensorboard")
    mlflow = {"tracking_uri": mlflow_uri, "experiment": "yaml", "log_artifacts": False}
    config = {
        **copy.deepcopy(CONFIG),
        "trackers": [
            {"name": "tensorboard", "options": {"log_dir": "tb"}},  # relative: in --out
            {"name": "mlflow", "options": mlflow},
        ],
    }
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    assert main(["search", str(path), "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in (out / "tb").glob("trial-*")) == ["trial-0000", "trial-0001"]
    _, parents, children = _runs(mlflow_uri, "yaml")
    assert len(parents) == 1 and len(children) == 2


# ------------------------------------------------------- a user's own data, start to finish
def _write_species_csv(path: Path, rows: int = 300) -> list[str]:
    """``rows`` rows of 6 numeric features and a string ``species``: three Gaussian clusters,
    one per species (learnable from the features). Returns the labels in row order."""
    rng = np.random.default_rng(0)
    species = ["virginica", "setosa", "versicolor"]  # not in sorted order
    centers = rng.normal(0.0, 3.0, size=(3, 6))
    labels, lines = [], ["f1,f2,f3,f4,f5,f6,species"]
    for i in range(rows):
        label = species[i % 3]
        x = centers[i % 3] + rng.normal(0.0, 1.0, size=6)
        lines.append(",".join(f"{v:.4f}" for v in x) + f",{label}")
        labels.append(label)
    path.write_text("\n".join(lines) + "\n")
    return labels


@pytest.mark.slow
def test_a_csv_search_with_both_trackers_from_the_command_line(tmp_path, monkeypatch, capsys):
    """`nasforge search config.yaml` on the user's CSV, TensorBoard and MLflow on; every file
    it writes is read back: results, best model, event files and the MLflow store."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # relative data paths are relative to where the command runs
    labels = _write_species_csv(tmp_path / "data.csv")
    mlp = {"max_depth": 2, "widths": [8, 16, 32], "activations": ["relu", "tanh"]}
    config = {
        "space": {"name": "mlp", "options": {**mlp, "max_dropout": 0.0, "norms": ["none"]}},
        "data": {"name": "csv", "options": {"path": "data.csv", "target": "species"}},
        "strategy": "random",
        "budget": 3,
        "seed": 0,
        "training": {"epochs": 2, "lr": 0.01, "batch_size": 32, "latency": False},
        "trackers": [
            {"name": "tensorboard", "options": {"log_dir": "tb"}},
            {
                "name": "mlflow",
                "options": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "csv"},
            },
        ],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["search", "config.yaml", "--out", "out", "--no-progress"]) == 0
    assert "best 3 of 3 trials" in capsys.readouterr().out
    out = tmp_path / "out"

    # the results: every trial, the best one, and its model
    record = json.loads((out / "trials.json").read_text())
    trials = record["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2]
    assert all(t["status"] == "finished" for t in trials)
    assert len((out / "trials.csv").read_text().splitlines()) == 4  # header + 3 trials
    best = json.loads((out / "best.json").read_text())
    assert best["number"] == record["best"] and best["key"] == trials[best["number"]]["key"]
    assert best["input_shape"] == [6] and best["num_classes"] == 3
    assert best["metrics"]["val_acc"] >= 0.8 and best["metrics"]["test_acc"] >= 0.8  # chance: 1/3
    space = nf.Space.from_dict(best["space"])
    model = space.build(space.from_key(best["key"]), input_shape=(6,), num_classes=3)
    model = nf.load_model(out / "best_model.pt", model=model).eval()
    # the class mapping: names sorted, class i = classes[i]
    classes = best["classes"]
    assert classes == ["setosa", "versicolor", "virginica"]
    features = np.loadtxt(tmp_path / "data.csv", delimiter=",", skiprows=1, usecols=range(6))
    with torch.no_grad():
        predicted = model(torch.as_tensor(features, dtype=torch.float32)).argmax(1).tolist()
    hits = sum(classes[p] == label for p, label in zip(predicted, labels, strict=True))
    assert hits / len(labels) >= 0.8  # the saved model predicts the user's labels

    # TensorBoard: one run per trial with its hparams and metrics, the progress in tb/
    assert sorted(p.name for p in (out / "tb").glob("trial-*")) == [
        "trial-0000",
        "trial-0001",
        "trial-0002",
    ]
    for trial in trials:
        events = _events(out / "tb" / f"trial-{trial['number']:04d}")
        assert _hparams(events) == trial["arch"]
        for name in ("val_acc", "val_loss", "params"):
            assert _scalars(events, name) == [(0, pytest.approx(trial["metrics"][name]))]
    root = _events(out / "tb")
    assert _scalars(root, "search/val_acc") == [
        (t["number"], pytest.approx(t["metrics"]["val_acc"])) for t in trials
    ]
    assert _scalars(root, "search/best_val_acc")[-1][1] == pytest.approx(best["metrics"]["val_acc"])

    # MLflow: the store in out/, one search run with a nested run per trial, the results
    client, parents, children = _runs(f"sqlite:///{out / 'mlflow.db'}", "csv")
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["space"] == "mlp" and parent.data.params["budget"] == "3"
    assert parent.data.metrics["best_val_acc"] == pytest.approx(best["metrics"]["val_acc"])
    by_number = {int(c.data.tags["nasforge.trial"]): c for c in children}
    assert sorted(by_number) == [0, 1, 2]
    for trial in trials:
        child = by_number[trial["number"]]
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.params == {k: str(v) for k, v in trial["arch"].items()}
        assert child.data.metrics["val_acc"] == pytest.approx(trial["metrics"]["val_acc"])
    run_id = parent.info.run_id
    artifacts = {a.path for a in client.list_artifacts(run_id, "result")}
    assert {"result/best_model.pt", "result/best.json", "result/trials.csv"} <= artifacts
    assert (out / "mlartifacts").is_dir()  # beside the database
    logged = client.download_artifacts(run_id, "result/best.json", str(tmp_path))
    assert json.loads(Path(logged).read_text()) == best
