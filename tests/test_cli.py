import subprocess
import sys

import pytest

import nasforge as nf
from nasforge.cli import main


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


def test_console_script_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "nasforge.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("nasforge ")
