"""`nasforge search CONFIG.yaml`: config checks, outputs, resume; malformed input."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import nasforge as nf
from nasforge.cli import main
from nasforge.cli.search import (
    WarmStart,
    build_evaluator,
    load_search_config,
    run,
    space_from_config,
)
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
            r"executor.cpus_per_trial must be a positive number",
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

    monkeypatch.setattr("nasforge.cli.search._load_data", no_data)
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
    assert config.budget >= 1 if config.darts is None else config.budget is None


# --- build options, evaluators, warm starts, DARTS and retraining ----------------------
# nb201 builds 1-D networks for (1, 16) signals; the configs below load no data.
NB201 = {
    "space": {"name": "nb201", "build_options": {"channels": 4, "cells_per_stage": 1}},
    "data": {"name": "synthetic", "options": {"num_samples": 120, "input_shape": [1, 16]}},
    "strategy": "random",
    "budget": 2,
    "training": {"epochs": 1, "latency": False},
}
DARTS = {key: NB201[key] for key in ("space", "data", "training")} | {"darts": {}}
NB201_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


def test_new_sections_are_read():
    config = load_search_config(
        {
            **copy.deepcopy(NB201),
            "evaluator": {"name": "supernet", "options": {"calibration_batches": 2}},
            "warm_start": {"proxy": "synflow", "pool": 20, "top": 3, "options": {"seed": 1}},
            "training": {"epochs": 2, "lr": 0.01, "latency": False},
            "retrain": {"epochs": 5},
        }
    )
    assert config.build_options == {"channels": 4, "cells_per_stage": 1}
    assert config.evaluator == ("supernet", {"calibration_batches": 2})
    assert config.warm_start == WarmStart("synflow", 20, 3, {"seed": 1})
    assert config.retrain == config.training.replace(epochs=5)  # the rest as training says
    assert config.darts is None and config.objective == ("val_acc",)
    proxy = load_search_config({**copy.deepcopy(NB201), "evaluator": "naswot"})
    assert proxy.objective == ("naswot",) and proxy.mode == ("max",)  # the proxy's score
    assert load_search_config({**copy.deepcopy(NB201), "retrain": True}).retrain == (proxy.training)
    darts = load_search_config({**copy.deepcopy(DARTS), "darts": {"guard": "none"}})
    assert darts.darts == {"guard": None} and darts.budget is None
    assert load_search_config({**copy.deepcopy(DARTS), "darts": True}).darts == {}


SEARCH_ONLY = {
    "strategy": "random",
    "budget": 3,
    "seed": 0,
    "evaluator": "supernet",
    "warm_start": {"proxy": "synflow"},
    "objective": "val_acc",
    "mode": "max",
    "constraints": ["params <= 1000"],
    "scheduler": {"name": "hyperband", "min_budget": 1, "max_budget": 1},
    "executor": "serial",
    "journal": "log.jsonl",
    "max_consecutive_failures": 3,
}

NEW_FIELD_ERRORS = [
    # space.build_options
    (
        {"space": {"name": "nb201", "build_options": {"chanels": 4}}},
        r"space\.build_options\.chanels.*Did you mean 'channels'",
    ),
    ({"space": {"name": "nb201", "build_options": [4]}}, r"space\.build_options must be a mapping"),
    (
        {"space": {"name": "nb201", "build_options": {"input_shape": [1, 16]}}},
        r"space\.build_options\.input_shape must be absent: it comes from the data",
    ),
    (
        {"space": {"name": "mlp", "build_options": {"channels": 4}}},
        r"space\.build_options\.channels must be absent \(the build options of space 'mlp'\)",
    ),
    ({"space": {"name": "nb201", "builds": {}}}, r"space\.builds.*unknown field"),
    # evaluator
    ({"evaluator": "supernt"}, r"evaluator\.name.*Did you mean 'supernet'"),
    (
        {"evaluator": "tabular"},
        r"evaluator\.name must be one of train, supernet, compression, naswot, snip, synflow",
    ),
    ({"evaluator": 3}, r"evaluator\.name must be a name string"),
    ({"evaluator": {"name": "supernet", "opts": {}}}, r"evaluator\.opts.*unknown field"),
    ({"evaluator": {"name": "supernet", "options": [2]}}, r"evaluator\.options must be a mapping"),
    (
        {"evaluator": {"name": "supernet", "options": {"calibration_batches": 0}}},
        r"evaluator\.options\.calibration_batches must be a positive integer",
    ),
    (
        {"evaluator": {"name": "supernet", "options": {"calibraton_batches": 2}}},
        r"evaluator\.options\.calibraton_batches.*Did you mean 'calibration_batches'",
    ),
    (
        {"evaluator": {"name": "supernet", "options": {"epochs": 2}}},
        r"evaluator\.options\.epochs.*HINT: set training\.epochs",
    ),
    (
        {"evaluator": {"name": "supernet", "options": {"checkpoint": "x.pt"}}},
        r"evaluator\.options\.checkpoint.*the config's own sections set it",
    ),
    (
        {"evaluator": {"name": "train", "options": {"lr": 0.1}}},
        r"evaluator\.options\.lr must be absent: no options.*HINT: set training\.lr",
    ),
    (
        {"evaluator": {"name": "synflow", "options": {"batch_size": "x"}}},
        r"evaluator\.options\.batch_size must be a positive integer",
    ),
    (
        {"evaluator": {"name": "snip", "options": {"input_shape": [1, 16]}}},
        r"evaluator\.options\.input_shape.*it comes from the data",
    ),
    (
        {"evaluator": {"name": "naswot", "options": {"build_options": {}}}},
        r"evaluator\.options\.build_options.*set space\.build_options",
    ),
    ({"evaluator": "supernet", "space": "mlp"}, r"evaluator\.name: space 'mlp' has no supernet"),
    (
        {
            "evaluator": "supernet",
            "scheduler": {"name": "hyperband", "min_budget": 1, "max_budget": 1},
        },
        r"scheduler must be absent with evaluator 'supernet'",
    ),
    (
        {"evaluator": "supernet", "objective": "params", "mode": "min"},
        r"objective must be one of the evaluator's metrics",
    ),
    (
        {"evaluator": "supernet", "constraints": ["latency_ms <= 2"]},
        r"constraints must be a constraint on one of",
    ),
    (
        {"evaluator": "synflow", "objective": "val_acc"},
        r"objective must be one of the evaluator's metrics \(params, synflow\)",
    ),
    ({"training": {"epochs": 1, "lr_schedule": "onecycle"}}, r"training\.lr_schedule must be"),
    # warm_start
    ({"warm_start": {"proxy": "synflw"}}, r"warm_start\.proxy.*Did you mean 'synflow'"),
    (
        {"warm_start": {"proxy": "supernet"}},
        r"warm_start\.proxy must be one of naswot, snip, synflow",
    ),
    ({"warm_start": {"pool": 5}}, r"warm_start\.proxy must be the name of a zero-cost proxy"),
    ({"warm_start": 5}, r"warm_start must be a mapping"),
    ({"warm_start": {"proxy": "synflow", "size": 3}}, r"warm_start\.size.*unknown field"),
    (
        {"warm_start": {"proxy": "synflow", "pool": 0}},
        r"warm_start\.pool must be a positive integer",
    ),
    (
        {"warm_start": {"proxy": "synflow", "top": "x"}},
        r"warm_start\.top must be a positive integer",
    ),
    (
        {"warm_start": {"proxy": "synflow", "pool": 5, "top": 6}},
        r"warm_start\.top must be at most warm_start\.pool \(5\)",
    ),
    (
        {"warm_start": {"proxy": "naswot", "options": {"batchsize": 8}}},
        r"warm_start\.options\.batchsize.*Did you mean 'batch_size'",
    ),
    (
        {"warm_start": {"proxy": "synflow", "options": {"seed": -1}}},
        r"warm_start\.options\.seed must be a non-negative integer",
    ),
    (
        {"warm_start": {"proxy": "synflow", "options": {"data": "digits"}}},
        r"warm_start\.options\.data",
    ),
    # retrain
    ({"retrain": 5}, r"retrain must be true, false, or a mapping of training options"),
    ({"retrain": {"epocs": 2}}, r"retrain\.epocs.*Did you mean 'epochs'"),
    ({"retrain": {"epochs": 0}}, r"retrain\.epochs must be a positive integer"),
    ({"retrain": {"lr": "fast"}}, r"retrain\.lr must be a positive number"),
    ({"retrain": {"val_fraction": 0.3}}, r"retrain\.val_fraction.*training\.val_fraction"),
    ({"retrain": {"lr_schedule": "onecycle"}}, r"retrain\.lr_schedule must be"),
]
DARTS_ERRORS = [
    ({"darts": 3}, r"darts must be a mapping of DARTS options, or true"),
    ({"darts": {"ordr": 1}}, r"darts\.ordr.*Did you mean 'order'"),
    ({"darts": {"order": 3}}, r"darts\.order must be"),
    ({"darts": {"guard": "betta"}}, r"darts\.guard.*Did you mean 'beta'"),
    ({"darts": {"guard": 1}}, r"darts\.guard must be"),
    ({"darts": {"guard_strength": -1}}, r"darts\.guard_strength must be"),
    ({"darts": {"arch_lr": 0}}, r"darts\.arch_lr must be"),
    ({"darts": {"arch_weight_decay": "x"}}, r"darts\.arch_weight_decay must be"),
    ({"darts": {"exclude": "none"}}, r"darts\.exclude must be a list of values never derived"),
    ({"darts": {"exclude": [{"op": "none"}]}}, r"darts\.exclude\[0\] must be a value"),
    (
        {"darts": {"exclude": ["nope"]}},
        r"darts\.exclude must be a value of the choices of space 'nb201'",
    ),
    (
        {"darts": {"exclude": NB201_OPS}},
        r"darts\.exclude must be a list that leaves a value of 'edge_1_0'",
    ),
    ({"darts": {"val_fraction": 1}}, r"darts\.val_fraction must be"),
    ({"darts": {"lr": 0.1}}, r"darts\.lr.*HINT: set training\.lr"),
    ({"darts": {"build_options": {}}}, r"darts\.build_options.*HINT: set space\.build_options"),
    ({"space": "mlp"}, r"darts: space 'mlp' has no supernet"),
    ({"data": None}, r"data\.name must be a name string"),
    ({"retrain": {"epocs": 2}}, r"retrain\.epocs"),
    *[
        ({name: value}, rf"^{name} must be absent in a DARTS run")
        for name, value in SEARCH_ONLY.items()
    ],
]


def _config_with(base: dict, change: dict) -> dict:
    config = {**copy.deepcopy(base), **copy.deepcopy(change)}
    if isinstance(change.get("space"), dict) and "build_options" not in change["space"]:
        config["space"] = {**change["space"]}
    return config


@pytest.mark.parametrize(
    ("base", "change", "message"),
    [(NB201, c, m) for c, m in NEW_FIELD_ERRORS] + [(DARTS, c, m) for c, m in DARTS_ERRORS],
)
def test_new_fields_are_checked_before_data_loads(tmp_path, monkeypatch, base, change, message):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the config was checked")

    monkeypatch.setattr("nasforge.cli.search._load_data", no_data)
    config = _config_with(base, change)
    with pytest.raises(nf.ConfigError, match=message):
        load_search_config(config)
    assert main(["search", str(write(tmp_path, config)), "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists()


def test_a_darts_run_needs_no_budget_and_a_search_does():
    load_search_config(copy.deepcopy(DARTS))
    with pytest.raises(nf.ConfigError, match=r"no 'budget' field"):
        load_search_config({**copy.deepcopy(DARTS), "darts": None})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"space": {"name": "nb201", "build_options": {"channels": 0}}},
            r"space\.build_options\.channels must be a positive integer",
        ),
        (
            {
                "evaluator": "supernet",
                "space": {"name": "nb201", "build_options": {"cells_per_stage": "x"}},
            },
            r"space\.build_options\.cells_per_stage must be a positive integer",
        ),
        (
            {
                "warm_start": "synflow",
                "space": {"name": "nb201", "build_options": {"channels": -1}},
            },
            r"space\.build_options\.channels",
        ),
    ],
)
def test_build_option_values_fail_when_the_data_loads_before_anything_is_written(
    tmp_path, change, message
):
    config = _config_with(NB201, change)
    assert main(["search", str(write(tmp_path, config)), "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists()
    with pytest.raises(nf.ConfigError, match=message):
        build_evaluator(load_search_config(config), tmp_path / "checkpoints")
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("evaluator", ["synflow", "naswot", "snip"])
def test_a_proxy_drives_a_search_and_its_best_arch_is_retrained(tmp_path, evaluator):
    config = {
        **copy.deepcopy(NB201),
        "evaluator": {"name": evaluator, "options": {"batch_size": 16}},
        "budget": 3,
        "constraints": ["params <= 100_000"],
        "retrain": True,
    }
    outcome = run(load_search_config(config), tmp_path / "o", progress=False)
    assert outcome.search is not None and outcome.retrained is not None
    best = outcome.search.best
    assert set(best.metrics) >= {evaluator, "params"}
    assert outcome.retrained["key"] == best.key
    assert outcome.retrained["source"] == {"kind": "search", "trial": best.number}
    saved = json.loads((tmp_path / "o" / "best.json").read_text())
    assert saved["build_options"] == {"channels": 4, "cells_per_stage": 1}


# --- malformed input: refused with a ConfigError naming the field ----------------------
# Each fuzz case sets one field to junk and asks an oracle, written from the documented
# rules, whether the value is valid (True: it must be accepted), malformed (False: it must
# be refused with a ConfigError naming the field) or not judged here (None).
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

# What BASE searches: the mlp space on synthetic data, latency off (docs/evaluation.md).
METRICS = ("val_acc", "val_loss", "val_f1", "train_loss", "train_acc", "params", "macs")
METRICS += ("epochs", "train_seconds")
MLP_OPTIONS = ("max_depth", "widths", "activations", "max_dropout", "norms")
SYNTHETIC_OPTIONS = ("num_samples", "input_shape", "num_classes", "noise", "val_fraction")
SYNTHETIC_OPTIONS += ("test_fraction", "seed")
LATENCY_FIELDS = {"batch_size": 1, "threads": 1, "warmup": 0, "repeats": 1}  # -> lowest value
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|<|>)\s*([0-9_.eE+-]+)\s*$")


def _int(value, low=None):
    ok = isinstance(value, int) and not isinstance(value, bool)
    return ok and (low is None or value >= low)


def _number(value):
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _training_options():
    return set(nf.TrainConfig.FIELDS) | {"latency", "val_fraction"}


def _named(value, names, judge_dict=lambda d: None):
    """A section given as a registered name or as ``{name: ..., ...}``."""
    if isinstance(value, str):
        return None if value in names else False
    if isinstance(value, dict):
        return judge_dict(value) if value.get("name") in names else False
    return False


def _constraint_item(item):
    if isinstance(item, str):
        match = _CONSTRAINT.match(item)
        return None if match and match.group(1) in (*METRICS, "flops") else False
    return None if isinstance(item, list) and len(item) == 3 else False  # (metric, op, bound)


def _scheduler_section(value):
    if value is None or value == "none" or value == {"name": "none"}:
        return True
    if isinstance(value, dict) and value.get("name") in ("hyperband", "successive_halving", "asha"):
        return None
    return False  # hyperband, successive_halving and asha need their budgets


def _latency(value):
    if value is None or isinstance(value, bool):
        return True
    if not isinstance(value, dict) or not set(value) <= set(LATENCY_FIELDS):
        return False
    return all(
        (k == "threads" and v is None) or _int(v, LATENCY_FIELDS[k]) for k, v in value.items()
    )


def _min_budget(value):  # max_budget 2, eta 2: at most 30 halvings
    if not _number(value) or not 0 < value <= 2 or value < 2**-29 * 0.999:
        return False
    return True if value > 2**-29 * 1.001 else None


VALID = {
    ("space",): lambda v: _named(v, nf.available("space")),
    ("space", "name"): lambda v: None if v in nf.available("space") else False,
    ("space", "options"): lambda v: (
        True
        if v in (None, {})
        else None
        if isinstance(v, dict) and set(v) <= set(MLP_OPTIONS)
        else False
    ),
    ("space", "options", "widths"): lambda v: (
        isinstance(v, list) and bool(v) and all(_int(w, 1) for w in v) and len(set(v)) == len(v)
    ),
    ("space", "options", "max_depth"): lambda v: _int(v, 1) and v <= 32,
    ("data",): lambda v: _named(v, nf.available("dataset")),
    ("data", "options"): lambda v: (
        True
        if v in (None, {})
        else None
        if isinstance(v, dict) and set(v) <= set(SYNTHETIC_OPTIONS)
        else False
    ),
    ("data", "options", "num_samples"): lambda v: None if _int(v, 7) else False,
    ("data", "options", "input_shape"): lambda v: (
        None if isinstance(v, list) and v and all(_int(d, 1) for d in v) else False
    ),
    ("strategy",): lambda v: _named(v, nf.available("strategy")),
    ("strategy", "options"): lambda v: v in (None, {}),  # random takes no options
    ("budget",): lambda v: _int(v, 1),
    ("seed",): lambda v: _int(v, 0),
    ("objective",): lambda v: (
        v in METRICS
        if isinstance(v, str)
        else isinstance(v, list)
        and bool(v)
        and all(isinstance(m, str) and m in METRICS for m in v)
        and len(set(v)) == len(v)
    ),
    ("mode",): lambda v: v in ("max", "min", ["max"], ["min"]),
    ("constraints",): lambda v: (
        True
        if v is None or v == []
        else _constraint_item(v)
        if isinstance(v, str)
        else False
        if not isinstance(v, list)
        else False
        if any(_constraint_item(c) is False for c in v)
        else None
    ),
    ("scheduler",): _scheduler_section,
    ("executor",): lambda v: (
        True if v is None or v in ("serial", "process") else _named(v, nf.available("executor"))
    ),
    ("training",): lambda v: (
        True
        if v in (None, {})
        else None
        if isinstance(v, dict) and set(v) <= _training_options()
        else False
    ),
    ("training", "epochs"): lambda v: _int(v, 1),
    ("training", "lr"): lambda v: _number(v) and v > 0,
    ("training", "batch_size"): lambda v: _int(v, 1),
    ("training", "latency"): _latency,
    ("training", "optimizer"): lambda v: (
        isinstance(v, str) and v.lower() in ("sgd", "adam", "adamw", "rmsprop")
    ),
    ("training", "val_fraction"): lambda v: None if _number(v) and 0 < v < 1 else False,
    ("journal",): lambda v: (
        isinstance(v, bool) or (None if isinstance(v, str) and "\x00" in v else v != "")
        if isinstance(v, bool | str)
        else False
    ),
    ("max_consecutive_failures",): lambda v: v is None or _int(v, 1),
    ("scheduler", "min_budget"): _min_budget,
    ("scheduler", "max_budget"): lambda v: _number(v) and 1 <= v <= 2,  # min 1, epochs 2
    ("scheduler", "eta"): lambda v: _int(v, 2),
    ("executor", "workers"): lambda v: _int(v, 1),
    ("executor", "timeout"): lambda v: v is None or (_number(v) and v > 0),
    ("executor", "threads_per_worker"): lambda v: v is None or _int(v, 1),
    ("executor", "start_method"): lambda v: (
        v is None or (isinstance(v, str) and v.lower() in ("fork", "forkserver", "spawn"))
    ),
    ("executor", "cpus_per_trial"): lambda v: _number(v) and v > 0,
    ("executor", "gpus_per_trial"): lambda v: _number(v) and v >= 0,
    # an address string is not judged: see test_known_gaps_in_config_checks
    ("executor", "address"): lambda v: True if v is None else None if isinstance(v, str) else False,
    # ray.init's keyword arguments are passed on as they are
    ("executor", "init_options"): lambda v: (
        True
        if v is None
        else None
        if isinstance(v, dict) and all(isinstance(k, str) for k in v)
        else False
    ),
}


def _with(base: dict, path: tuple[str, ...], value: object) -> dict:
    """A copy of ``base`` whose field ``path`` is ``value``."""
    config = copy.deepcopy(base)
    node = config
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return config


def _check(base: dict, path: tuple[str, ...], value: object) -> None:
    """A malformed value is refused with a ConfigError naming the field (or a parent);
    a valid one is accepted."""
    verdict = VALID[path](value)
    try:
        build_evaluator(load_search_config(_with(base, path, value)), None)
    except nf.ConfigError as exc:
        assert verdict is not True, f"valid {path}={value!r} was refused: {exc}"
        assert any(key in str(exc) for key in path), (path, str(exc))
    else:
        assert verdict is not False, f"malformed {path}={value!r} was accepted"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), junk)
@example(("budget",), True)
@example(("seed",), -1)
@example(("mode",), ["max", "min"])
@example(("objective",), ["val_acc", "val_acc"])
@example(("constraints",), {"params": 5})
@example(("strategy", "options"), {"population": 3})
@example(("training", "latency"), {"threads": 0})
@example(("journal",), "")
@example(("space", "options", "widths"), [8, 8])
def test_malformed_configs_are_refused(path, value):
    _check(BASE, path, value)


@pytest.mark.parametrize("executor", sorted(EXECUTOR_FIELDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_scheduler_and_executor_options_are_refused(executor, data):
    if executor == "ray":
        pytest.importorskip("ray")
    base = {**copy.deepcopy(BASE), **PLUGINS, "executor": {"name": executor}}
    path = data.draw(st.sampled_from(PLUGIN_FIELDS + EXECUTOR_FIELDS[executor]))
    _check(base, path, data.draw(junk))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("executor", "address"), ""),
        (("executor", "address"), "> d"),
        (("strategy", "options"), {"seed": 1}),
        (("strategy", "options"), {"space": "mlp"}),
    ],
)
def test_known_gaps_in_config_checks(path, value):
    base = copy.deepcopy(BASE)
    if path[0] == "executor":
        pytest.importorskip("ray")
        base["executor"] = {"name": "ray"}
    with pytest.raises(nf.ConfigError, match=re.escape(".".join(path))):
        build_evaluator(load_search_config(_with(base, path, value)), None)


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
_FIELDS_OF = {
    "choice": {"choices"},
    "int": {"low", "high", "step", "log"},
    "float": {"low", "high", "log"},
    "fixed": {"value"},
}


def _text(value):
    """How a value reads inside an architecture key (docs/spaces.md)."""
    return repr(value) if isinstance(value, float) else str(value)


def _value(value):
    """A value a Choice or Fixed may hold: a finite scalar whose text has no | = ~."""
    if value is not None and not isinstance(value, str | int | float | bool):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if any(c in _text(value) for c in "|=~"):
        return False
    return None if value == "" else True


def _choices(choices):
    if not isinstance(choices, list) or not choices:
        return False
    verdicts = [_value(c) for c in choices]
    if False in verdicts or len({_text(c) for c in choices}) != len(choices):
        return False
    return None if None in verdicts else True


def _param(name, spec):
    """The oracle for one parameter spec (see Space.from_dict)."""
    if not name or any(c in name for c in "|=~"):
        return False
    if isinstance(spec, list):
        return _choices(spec)
    if not isinstance(spec, dict):
        return _value(spec)
    spec = dict(spec)
    implied = "choice" if "choices" in spec else "fixed" if "value" in spec else None
    kind = spec.pop("type", implied)
    if not isinstance(kind, str) or kind not in _FIELDS_OF:
        return False
    if not set(spec) <= _FIELDS_OF[kind] | {"when"}:
        return False
    when = spec.pop("when", None)
    if when is not None and not (isinstance(when, dict) and when):
        return False  # a non-mapping `when`: test_known_gaps_in_space_checks
    if not set(spec) >= _FIELDS_OF[kind] - {"step", "log"} or not isinstance(
        spec.get("log", False), bool
    ):
        return None  # missing fields and non-boolean logs: test_known_gaps_in_space_checks
    if kind == "choice":
        verdict = _choices(spec["choices"])
    elif kind == "fixed":
        verdict = _value(spec["value"])
    elif kind == "int":
        low, high, log = spec["low"], spec["high"], spec.get("log", False)
        verdict = _int(low) and _int(high) and low <= high and (not log or low >= 1)
    else:
        low, high, log = spec["low"], spec["high"], spec.get("log", False)
        verdict = _number(low) and _number(high) and low < high and (not log or low > 0)
    return None if verdict and when is not None else verdict  # parents: not judged


def _space(name, params):
    if not params:
        return False
    verdicts = [_param(n, spec) for n, spec in params.items()]
    if False in verdicts or name == "":  # a space needs a non-empty name
        return False
    if None in verdicts or not isinstance(name, str):  # a non-string name: a known gap
        return None
    return True


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=5), param_spec | junk, max_size=4), junk)
@example({"a": {"type": "bogus"}}, "s")
@example({"a": {"type": "int", "low": 3, "high": 1}}, "s")
@example({"a": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "s")
@example({"a": {"choices": [1, 1]}}, "s")
@example({"a|b": [1, 2]}, "s")
@example({"a": [float("nan")]}, "s")
@example({}, "s")
def test_malformed_spaces_are_refused(params, name):
    verdict = _space(name, params)
    try:
        space = Space.from_dict({"name": name, "params": params})
    except nf.ConfigError as exc:
        assert verdict is not True, f"a valid space was refused: {exc}"
        assert str(exc)
    else:
        assert verdict is not False, f"a malformed space was accepted: {params!r}"
        arch = space.sample(0)  # and a space that was accepted works
        assert space.contains(arch) and space.from_key(arch.key) == arch


@pytest.mark.parametrize(
    "spec",
    [
        {"name": 5, "params": {"a": [1, 2]}},  # names are strings, not coerced with str()
        {"name": None, "params": {"a": [1, 2]}},
        {"params": {"a": {"type": "int", "low": 1, "high": 4, "log": "no"}}},  # reads as True
        {"params": {"a": {"type": "float", "low": 0.1, "high": 1.0, "log": []}}},
        {"params": {"a": {"type": "float"}}},  # silently [0, 1]
        {"params": {"a": {"type": "int", "low": -3}}},  # silently [-3, 0]
        {"params": {"a": {"type": "fixed"}}},  # silently None
        {"params": {"a": {"type": "choice", "choices": [1, 2], "when": [1]}}},  # TypeError
        {"params": {"a": {"type": "choice", "choices": [1, 2], "when": "b"}}},  # ValueError
        {"params": {"a": {"type": "choice", "choices": [1, 2], "when": 5}}},  # TypeError
    ],
)
def test_known_gaps_in_space_checks(spec):
    with pytest.raises(nf.ConfigError):
        Space.from_dict(spec)


# The new sections, fuzzed the same way (the config is only read: no data loads).
PROXIES = ("naswot", "snip", "synflow")
EVALUATORS = ("train", "supernet", *PROXIES)
WARM = {**copy.deepcopy(NB201), "warm_start": {"proxy": "synflow"}}  # pool 100, top 10
SUPERNET = {**copy.deepcopy(NB201), "evaluator": {"name": "supernet"}, "retrain": {}}
FUZZ_DARTS = {**copy.deepcopy(DARTS), "darts": {"order": 1}}


def _evaluator_section(value):
    if value is None:
        return True
    if isinstance(value, str):
        return value.lower() in EVALUATORS
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return False
    if value["name"].lower() not in EVALUATORS or not set(value) <= {"name", "options"}:
        return False
    return True if value.get("options") in (None, {}) else None


def _exclude(value):
    if not isinstance(value, list):
        return False
    if not all(isinstance(v, str) and v in NB201_OPS for v in value):
        return False
    return not set(NB201_OPS) <= set(value)


def _options(value, names):
    if value in (None, {}):
        return True
    return None if isinstance(value, dict) and set(value) <= set(names) else False


NEW_VALID = {
    ("NB201", ("space", "build_options")): lambda v: _options(v, ("channels", "cells_per_stage")),
    ("NB201", ("evaluator",)): _evaluator_section,
    ("SUPERNET", ("evaluator", "options")): lambda v: _options(v, ("calibration_batches",)),
    ("SUPERNET", ("evaluator", "options", "calibration_batches")): lambda v: _int(v, 1),
    ("NB201", ("warm_start",)): lambda v: (
        True
        if v is None
        else v in PROXIES
        if isinstance(v, str)
        else None
        if isinstance(v, dict) and v.get("proxy") in PROXIES
        else False
    ),
    ("WARM", ("warm_start", "pool")): lambda v: _int(v, 10),
    ("WARM", ("warm_start", "top")): lambda v: _int(v, 1) and v <= 100,
    ("WARM", ("warm_start", "options")): lambda v: _options(v, ("batch_size", "seed")),
    ("WARM", ("warm_start", "options", "seed")): lambda v: _int(v, 0),
    ("NB201", ("retrain",)): lambda v: (
        True if v is None or isinstance(v, bool) or v == {} else _options(v, nf.TrainConfig.FIELDS)
    ),
    ("SUPERNET", ("retrain", "epochs")): lambda v: _int(v, 1),
    ("SUPERNET", ("retrain", "lr")): lambda v: _number(v) and v > 0,
    ("FUZZ_DARTS", ("darts", "order")): lambda v: _int(v, 1) and v <= 2,
    ("FUZZ_DARTS", ("darts", "guard")): lambda v: (
        v is None or (isinstance(v, str) and v.lower() in ("beta", "aux_skip", "none"))
    ),
    ("FUZZ_DARTS", ("darts", "guard_strength")): lambda v: v is None or (_number(v) and v >= 0),
    ("FUZZ_DARTS", ("darts", "arch_lr")): lambda v: _number(v) and v > 0,
    ("FUZZ_DARTS", ("darts", "arch_weight_decay")): lambda v: _number(v) and v >= 0,
    ("FUZZ_DARTS", ("darts", "exclude")): _exclude,
    ("FUZZ_DARTS", ("darts", "val_fraction")): lambda v: _number(v) and 0 < v < 1,
}
_NEW_CASES = list(NEW_VALID)
FUZZ_BASES = {"NB201": NB201, "SUPERNET": SUPERNET, "WARM": WARM, "FUZZ_DARTS": FUZZ_DARTS}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(_NEW_CASES))), junk)
@example(_NEW_CASES.index(("NB201", ("retrain",))), "yes")
@example(_NEW_CASES.index(("FUZZ_DARTS", ("darts", "exclude"))), [True])
@example(_NEW_CASES.index(("FUZZ_DARTS", ("darts", "guard"))), "None")
@example(_NEW_CASES.index(("WARM", ("warm_start", "top"))), 101)
def test_malformed_new_sections_are_refused(case, value):
    base, path = _NEW_CASES[case]
    verdict = NEW_VALID[base, path](value)
    try:
        load_search_config(_with(FUZZ_BASES[base], path, value))
    except nf.ConfigError as exc:
        assert verdict is not True, f"valid {path}={value!r} was refused: {exc}"
        assert any(key in str(exc) for key in path), (path, str(exc))
    else:
        assert verdict is not False, f"malformed {path}={value!r} was accepted"
