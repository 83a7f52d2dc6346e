import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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


def test_demo_trains_and_reports_test_accuracy(capsys):
    assert main(["demo", "--epochs", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("test accuracy:"))
    accuracy = float(line.split()[2])
    assert accuracy > 0.8


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
