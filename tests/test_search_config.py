"""`nasforge search CONFIG.yaml`: config checks, outputs, resume; malformed input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nasforge as nf
from nasforge.cli import main
from nasforge.nas.config import build_evaluator, load_search_config, space_from_config
from nasforge.space import Space

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "configs"

BASE = {
    "space": {"name": "mlp", "options": {"max_depth": 2, "widths": [8, 16]}},
    "data": {"name": "synthetic", "options": {"num_samples": 200, "input_shape": [6]}},
    "strategy": {"name": "random"},
    "budget": 3,
    "seed": 0,
    "objective": "val_acc",
    "mode": "max",
    "constraints": ["params <= 1_000"],
    "training": {"epochs": 1, "lr": 0.01, "latency": False},
}


def write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_valid_config_is_read():
    config = load_search_config(copy.deepcopy(BASE))
    assert config.budget == 3 and config.strategy == ("random", {})
    assert config.constraints == ("params <= 1000",) and config.objective == ("val_acc",)
    assert config.space.name == "mlp" and config.journal is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"budgets": 3}, r"config\.budgets.*unknown field\. Did you mean 'budget'"),
        ({"budget": "ten"}, r"budget must be a positive integer, but got 'ten'"),
        ({"seed": -1}, r"seed must be a non-negative integer"),
        ({"strategy": "evolutoin"}, r"strategy\.name.*Did you mean 'evolution'"),
        ({"strategy": {"name": "random", "opts": {}}}, r"strategy\.opts.*unknown field"),
        ({"objective": ["val_acc", "params"], "mode": ["max"]}, r"mode must be"),
        ({"constraints": ["params == 3"]}, r"constraints must be 'metric <= number'"),
        ({"scheduler": {"name": "hyperbnd"}}, r"scheduler\.name.*Did you mean 'hyperband'"),
        ({"data": {"name": "mnist-1d"}}, r"data\.name.*Did you mean 'mnist1d'"),
        ({"space": {"name": "cnn", "options": [1]}}, r"space\.options must be a mapping"),
        ({"journal": 3}, r"journal must be a file path, true or false"),
        ({"space": {"name": "s", "params": {"a": [1, 2]}}}, r"space\.params.*registered space"),
    ],
)
def test_bad_configs_name_the_field(change, message):
    with pytest.raises(nf.ConfigError, match=message):
        load_search_config({**copy.deepcopy(BASE), **change})


def test_bad_plugin_options_fail_before_any_training(tmp_path):
    config = {**copy.deepcopy(BASE), "strategy": {"name": "evolution", "options": {"size": 3}}}
    assert main(["search", str(write(tmp_path, config)), "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists()
    config = {
        **copy.deepcopy(BASE),
        "scheduler": {"name": "hyperband", "min_budget": 0, "max_budget": 1},
    }
    with pytest.raises(nf.ConfigError, match=r"scheduler.*min_budget must be a positive number"):
        build_evaluator(load_search_config(config), None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"objective": "val_accuracy"},
            r"objective must be one of the evaluator's metrics.*"
            r"Did you mean 'val_acc'",
        ),
        ({"constraints": ["latencyms <= 5"]}, r"constraints must be a constraint on one of"),
        ({"objective": "latency_ms", "mode": "min"}, r"objective must be one of.*'latency_ms'"),
        (
            {"objective": ["val_acc", "params"], "mode": ["max", "min"], "strategy": "local"},
            r"strategy must be a multi-objective strategy",
        ),
        (
            {"scheduler": {"name": "hyperband", "min_budget": 1, "max_budget": 9}},
            r"scheduler\.max_budget must be at most the evaluator's epochs \(1\)",
        ),
        (
            {"training": {"epochz": 3}},
            r"training\.epochz.*one of the training options.*"
            r"Did you mean 'epochs'",
        ),
        ({"executor": {"name": "ray", "wrkers": 2}}, r"executor: .*wrkers"),
        (
            {"executor": {"name": "ray", "cpus_per_trial": "x"}},
            r"executor.cpus_per_trial must be a number > 0",
        ),
        (
            {"executor": {"name": "process", "threads_per_worker": "x"}},
            r"executor.threads_per_worker must be a positive integer",
        ),
    ],
)
def test_config_errors_come_before_data_loads_or_anything_is_written(
    tmp_path, monkeypatch, change, message
):
    config = {**copy.deepcopy(BASE), **change}
    if "training" in change:
        config["training"] = {**BASE["training"], **change["training"]}
    if "executor" in change and change["executor"]["name"] == "ray":
        pytest.importorskip("ray")

    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the config was checked")

    monkeypatch.setattr("nasforge.nas.config._load_data", no_data)
    with pytest.raises(nf.ConfigError, match=message):
        build_evaluator(load_search_config(config), tmp_path / "checkpoints")
    assert main(["search", str(write(tmp_path, config)), "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists() and not (tmp_path / "checkpoints").exists()


def test_training_values_are_checked_before_anything_is_written(tmp_path):
    config = {**copy.deepcopy(BASE), "training": {**BASE["training"], "grad_clip": "x"}}
    with pytest.raises(nf.ConfigError, match=r"training\.grad_clip must be a positive number"):
        build_evaluator(load_search_config(config), tmp_path / "checkpoints")
    assert not (tmp_path / "checkpoints").exists()


def test_cli_search_writes_results_and_resumes(tmp_path, capsys):
    path = write(tmp_path, copy.deepcopy(BASE))
    out = tmp_path / "out"
    assert main(["search", str(path), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "best 3 of 3 trials" in printed and "val_acc" in printed
    for name in ("trials.csv", "trials.json", "best.json", "best_model.pt", "journal.jsonl"):
        assert (out / name).is_file(), name
    best = json.loads((out / "best.json").read_text())
    space = space_from_config(best["space"])
    model = space.build(space.arch(best["arch"]), input_shape=[6], num_classes=3)
    nf.load_model(out / "best_model.pt", model=model)  # the saved weights fit the arch

    assert main(["search", str(path), "--out", str(out)]) == 1
    assert "--resume" in capsys.readouterr().err
    before = (out / "journal.jsonl").read_text()
    config = {**copy.deepcopy(BASE), "budget": 4}  # extend the finished search by one trial
    path = write(tmp_path, config)
    assert main(["search", str(path), "--out", str(out), "--resume", "--no-progress"]) == 0
    added = (out / "journal.jsonl").read_text()[len(before) :].splitlines()
    assert [json.loads(line)["type"] for line in added] == ["start", "end"]
    assert main(["search", str(path), "--out", str(tmp_path / "new"), "--resume"]) == 1


def test_cli_search_with_the_process_executor(tmp_path, capsys):
    config = {**copy.deepcopy(BASE), "executor": {"name": "process", "workers": 2}}
    config["journal"] = "log.jsonl"  # relative to --out
    out = tmp_path / "out"
    assert main(["search", str(write(tmp_path, config)), "--out", str(out), "--no-progress"]) == 0
    assert "3 finished" in capsys.readouterr().out and (out / "log.jsonl").is_file()


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("search_*.yaml")))
def test_example_configs_are_valid(name):
    config = load_search_config(EXAMPLES / name)
    assert config.budget >= 1


# --- malformed input: always a nasforge error with a message -----------------------------
junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = [
    ("space",),
    ("space", "name"),
    ("space", "options"),
    ("space", "options", "widths"),
    ("space", "options", "max_depth"),
    ("data",),
    ("data", "options"),
    ("data", "options", "num_samples"),
    ("data", "options", "input_shape"),
    ("strategy",),
    ("strategy", "options"),
    ("budget",),
    ("seed",),
    ("objective",),
    ("mode",),
    ("constraints",),
    ("scheduler",),
    ("executor",),
    ("training",),
    ("training", "epochs"),
    ("training", "lr"),
    ("training", "batch_size"),
    ("training", "latency"),
    ("training", "optimizer"),
    ("training", "val_fraction"),
    ("journal",),
    ("max_consecutive_failures",),
]


# The same with a scheduler and each executor, whose options are then malformed too.
PLUGINS = {
    "training": {**BASE["training"], "epochs": 2},
    "scheduler": {"name": "hyperband", "min_budget": 1, "max_budget": 2, "eta": 2},
}
PLUGIN_FIELDS = [
    ("scheduler", "min_budget"),
    ("scheduler", "max_budget"),
    ("scheduler", "eta"),
    ("executor", "workers"),
    ("executor", "timeout"),
]
EXECUTOR_FIELDS = {
    "serial": [],
    "process": [("executor", "threads_per_worker"), ("executor", "start_method")],
    "ray": [
        ("executor", "cpus_per_trial"),
        ("executor", "gpus_per_trial"),
        ("executor", "address"),
        ("executor", "init_options"),
    ],
}


def _malformed(base: dict, path: tuple[str, ...], value: object) -> None:
    """Set ``path`` of ``base`` to ``value`` and check that the config fails, if it does,
    with a nasforge error whose message names the field (or one of its parents)."""
    config = copy.deepcopy(base)
    node = config
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    try:
        build_evaluator(load_search_config(config), None)
    except nf.NasforgeError as exc:
        assert any(key in str(exc) for key in path), (path, str(exc))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), junk)
def test_malformed_configs_give_nasforge_errors(path, value):
    _malformed(BASE, path, value)


@pytest.mark.parametrize("executor", sorted(EXECUTOR_FIELDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_scheduler_and_executor_options_give_nasforge_errors(executor, data):
    if executor == "ray":
        pytest.importorskip("ray")
    base = {**copy.deepcopy(BASE), **PLUGINS, "executor": {"name": executor}}
    path = data.draw(st.sampled_from(PLUGIN_FIELDS + EXECUTOR_FIELDS[executor]))
    _malformed(base, path, data.draw(junk))


param_spec = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["choice", "int", "float", "fixed", "bogus"]) | junk,
        "choices": junk,
        "low": junk,
        "high": junk,
        "log": junk,
        "value": junk,
        "when": junk,
    },
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=5), param_spec | junk, max_size=4), junk)
def test_malformed_spaces_give_nasforge_errors(params, name):
    try:
        space = Space.from_dict({"name": name, "params": params})
    except nf.NasforgeError as exc:
        assert str(exc)
    else:  # a space that was accepted works
        arch = space.sample(0)
        assert space.contains(arch) and space.from_key(arch.key) == arch
