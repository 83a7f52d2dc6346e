import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import nasforge as nf
from nasforge.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"

TINY_SEARCH = {
    "space": {"name": "mlp", "options": {"max_depth": 1, "widths": [8, 16]}},
    "data": {"name": "synthetic", "options": {"num_samples": 120, "input_shape": [6]}},
    "strategy": "random",
    "budget": 2,
    "training": {"epochs": 1, "latency": False},
}


def _env():
    """This process's environment, with this checkout's code first on the path."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _write_config(directory, name="tiny"):
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(TINY_SEARCH))
    return path


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nasforge {nf.__version__}"


def test_list_all_kinds(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in nf.KINDS:
        assert f"{kind}:" in out
    assert "digits" in out and "Handwritten digits" in out


def test_list_one_kind(capsys):
    assert main(["list", "dataset"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "dataset:"
    assert "strategy:" not in out


def test_list_unknown_kind_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["list", "strategies"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "nasforge.cli", "--version"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert out.returncode == 0 and out.stdout.strip() == f"nasforge {nf.__version__}"


def test_console_script_is_installed(tmp_path):
    script = shutil.which("nasforge") or shutil.which(
        "nasforge", path=os.path.dirname(sys.executable)
    )
    if script is None:
        pytest.skip("the nasforge console script is not installed (pip install -e .)")
    env = _env()
    out = subprocess.run([script, "--version"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == f"nasforge {nf.__version__}"
    out = subprocess.run([script, "list", "executor"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.splitlines()[0] == "executor:"
    assert "process" in out.stdout and "serial" in out.stdout
    missing = tmp_path / "missing.yaml"
    out = subprocess.run([script, "search", str(missing)], capture_output=True, text=True, env=env)
    assert out.returncode == 1  # main's return value is the exit status
    assert out.stderr.startswith("error: ") and "does not exist" in out.stderr
    out = subprocess.run([script], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "demo" in out.stdout


def test_search_writes_to_the_config_named_directory_by_default(tmp_path, monkeypatch, capsys):
    config = _write_config(tmp_path / "configs", "tiny_search")
    monkeypatch.chdir(tmp_path)
    assert main(["search", str(config), "--no-progress"]) == 0
    out = tmp_path / "tiny_search-results"  # ./<config name>-results, not next to the config
    assert (out / "trials.csv").is_file() and (out / "journal.jsonl").is_file()
    assert not (tmp_path / "configs" / "tiny_search-results").exists()
    assert f"results written to {out}" in capsys.readouterr().out


def test_verbose_logs_progress_details(tmp_path, capsys):
    """``-v`` logs per-epoch metrics and new best trials to standard error; without it the
    library logs nothing below a warning."""
    config = _write_config(tmp_path)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stderr = {}
    try:
        for flags in ([], ["-v"]):
            root.handlers.clear()  # as in a fresh process, where main sets logging up
            out = tmp_path / f"out{len(flags)}"
            assert main([*flags, "search", str(config), "--out", str(out), "--no-progress"]) == 0
            stderr[bool(flags)] = capsys.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "INFO" not in stderr[False]
    assert "INFO nasforge.train.engine: epoch 1/1" in stderr[True]
    assert "INFO nasforge.nas.loop: trial 0: new best val_acc=" in stderr[True]


# --- one-shot searches from YAML: the example configs, shrunk to seconds ----------------
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "configs"
TINY = {"channels": 4, "cells_per_stage": 1}


def _tiny_example(name, tmp_path, **changes):
    """The example config ``name`` on 300 MNIST-1D signals, 4-channel cells, 1 epoch."""
    pytest.importorskip("mnist1d")
    config = yaml.safe_load((EXAMPLES / name).read_text())
    config["space"]["build_options"] = dict(TINY)
    config["data"]["options"]["num_samples"] = 300
    config["training"].update(epochs=1, batch_size=64)
    config["retrain"] = {"epochs": 1}
    config.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


class _EpochCounter:
    """Counts the training epochs run (supernet, DARTS and retraining alike); raises
    KeyboardInterrupt at epoch ``interrupt_at`` (1-based) when given."""

    def __init__(self, monkeypatch, interrupt_at=None):
        from nasforge.train.engine import Engine

        self.count, original = 0, Engine._epoch

        def epoch(engine, *args, **kwargs):
            self.count += 1
            if self.count == interrupt_at:
                raise KeyboardInterrupt
            return original(engine, *args, **kwargs)

        monkeypatch.setattr(Engine, "_epoch", epoch)


def test_supernet_search_with_warm_start_and_retrain(tmp_path, capsys, monkeypatch):
    evaluator = {"name": "supernet", "options": {"calibration_batches": 2}}
    config = _tiny_example(
        "search_supernet_mnist1d.yaml",
        tmp_path,
        budget=4,
        evaluator=evaluator,
        strategy={"name": "evolution", "options": {"population_size": 3, "sample_size": 2}},
        warm_start={"proxy": "synflow", "pool": 12, "top": 2},
    )
    out = tmp_path / "out"
    assert main(["search", str(config), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "best 4 of 4 trials" in printed and "retrained |" in printed
    trials = json.loads((out / "trials.json").read_text())["trials"]
    warm = json.loads((out / "warm_start.json").read_text())
    assert warm["proxy"] == "synflow" and warm["pool"] == 12
    assert [t["key"] for t in trials[:2]] == [a["key"] for a in warm["archs"]]  # tried first
    best = json.loads((out / "best.json").read_text())
    assert best["build_options"] == TINY and "test_acc" in best["metrics"]
    retrained = json.loads((out / "retrained.json").read_text())
    assert retrained["key"] == best["key"] and retrained["epochs"] == 1
    assert retrained["source"] == {"kind": "search", "trial": best["number"]}
    assert {"val_acc", "test_acc", "params"} <= set(retrained["metrics"])
    space = nf.Space.from_dict(retrained["space"])
    model = space.build(
        space.from_key(retrained["key"]),
        input_shape=retrained["input_shape"],
        num_classes=retrained["num_classes"],
        **retrained["build_options"],
    )
    nf.load_model(out / "retrained_model.pt", model=model)  # the weights fit the arch

    supernet = (out / "supernet.pt").read_bytes()
    counter = _EpochCounter(monkeypatch)
    bigger = _tiny_example(
        "search_supernet_mnist1d.yaml",
        tmp_path,
        **{**yaml.safe_load(config.read_text()), "budget": 5},
    )
    assert main(["search", str(bigger), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "best 5 of 5 trials" in capsys.readouterr().out
    assert counter.count == 1  # the retraining's epoch: the supernet was not trained again
    assert (out / "supernet.pt").read_bytes() == supernet


def test_a_supernet_interrupted_in_training_continues_where_it_stopped(tmp_path, monkeypatch):
    config = _tiny_example(
        "search_supernet_mnist1d.yaml",
        tmp_path,
        budget=2,
        strategy="random",
        warm_start=None,
        retrain=None,
        training={"epochs": 2, "batch_size": 64},
    )
    out = tmp_path / "out"
    _EpochCounter(monkeypatch, interrupt_at=2)
    assert main(["search", str(config), "--out", str(out), "--no-progress"]) == 130
    assert (out / "supernet.pt").is_file() and not (out / "journal.jsonl").exists()
    counter = _EpochCounter(monkeypatch)
    assert main(["search", str(config), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert counter.count == 1  # epoch 2 only: epoch 1 came from the checkpoint
    assert len(torch.load(out / "supernet.pt", weights_only=False)["history"]) == 2
    changed = _tiny_example(
        "search_supernet_mnist1d.yaml",
        tmp_path,
        **{**yaml.safe_load(config.read_text()), "training": {"epochs": 2, "lr": 0.1}},
    )
    assert main(["search", str(changed), "--out", str(tmp_path / "out"), "--resume"]) == 1


def test_darts_with_retrain_and_its_resume(tmp_path, capsys, monkeypatch):
    config = _tiny_example("search_darts_mnist1d.yaml", tmp_path)
    out = tmp_path / "out"
    assert main(["search", str(config), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "DARTS derived |" in printed and "retrained |" in printed
    found = json.loads((out / "darts.json").read_text())
    space = nf.Space.from_dict(found["space"])
    arch = space.from_key(found["key"])
    assert arch.to_dict() == found["arch"] and "none" not in found["arch"].values()
    assert set(found["weights"]) == {p.name for p in space.params}
    for weights in found["weights"].values():
        assert set(weights) == set(NB201_OPS) and sum(weights.values()) == pytest.approx(1)
    assert len(found["history"]) == 1 and found["history"][0]["arch"] == found["key"]
    assert found["seconds"] > 0 and found["build_options"] == TINY
    retrained = json.loads((out / "retrained.json").read_text())
    assert retrained["key"] == found["key"] and retrained["source"]["kind"] == "darts"
    assert (out / "retrained_model.pt").is_file()

    assert main(["search", str(config), "--out", str(out)]) == 1  # not over a DARTS run
    assert "--resume" in capsys.readouterr().err
    counter = _EpochCounter(monkeypatch)
    assert main(["search", str(config), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "kept from darts.json" in capsys.readouterr().out
    assert counter.count == 1  # retrained again; DARTS was not run again
    other = yaml.safe_load(config.read_text())
    other["darts"]["arch_lr"] = 0.1
    config.write_text(yaml.safe_dump(other))
    assert main(["search", str(config), "--out", str(out), "--resume"]) == 1
    assert "darts differ" in capsys.readouterr().err


NB201_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
