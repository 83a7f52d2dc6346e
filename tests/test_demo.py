"""``nasforge demo``: search, pick under a latency budget, distil, prune, quantize, report."""

from __future__ import annotations

import json

import pytest
import torch

import nasforge as nf
from nasforge.cli import main
from nasforge.cli.demo import most_accurate, pick
from nasforge.nas.result import SearchResult, Trial, TrialStatus


def test_the_demo_runs_end_to_end_and_writes_what_it_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--budget", "6", "--epochs", "2", "--distill-epochs", "1", "--workers", "1"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert [r["name"].split(" (")[0] for r in rows[:2]] == [
        "most accurate searched",
        "picked under latency budget",
    ]
    assert rows[2]["name"] == "distilled, pruned 50%, distilled" and rows[3]["name"] == "int8"
    assert rows[2]["params"] < rows[1]["params"]  # channels really removed
    assert rows[3]["size_bytes"] < rows[2]["size_bytes"]  # int8 weights
    assert all(r["latency_ms"] > 0 and 0 <= r["accuracy"] <= 1 for r in rows)
    assert results["table"] in printed
    # the final model is the int8 one unless int8 was slower, and it scores what was reported
    int8_slower = rows[3]["latency_ms"] > rows[2]["latency_ms"]
    assert bool(results["notes"]) == int8_slower
    final = torch.jit.load(str(out / "final_model.ts"))
    data = nf.load_dataset("digits", seed=0)
    inputs, targets = data.test.tensors
    with torch.no_grad():
        accuracy = (final(inputs).argmax(dim=1) == targets).float().mean().item()
    assert accuracy == pytest.approx(rows[2 if int8_slower else 3]["accuracy"], abs=1e-6)
    assert len((out / "trials.csv").read_text().strip().splitlines()) == 1 + 6
    assert (out / "best_model.pt").exists()


def _trial(number, val_acc, val_loss, latency_ms):
    metrics = {"val_acc": val_acc, "val_loss": val_loss, "latency_ms": latency_ms}
    space = nf.build("space", "nb201")
    arch = space.sample(seed=number)
    return Trial(number, arch, TrialStatus.FINISHED, metrics)


def test_the_reference_and_the_pick_break_ties_by_validation_loss():
    trials = [
        _trial(0, 1.0, 0.30, 2.0),
        _trial(1, 1.0, 0.10, 3.0),  # as accurate, more confident: the reference
        _trial(2, 0.9, 0.40, 1.0),
        _trial(3, 0.9, 0.20, 1.5),  # the pick under a 0.5 budget (1.5 ms)
        _trial(4, 0.8, 0.50, 0.5),
    ]
    result = SearchResult(trials, objective="val_acc")
    best = most_accurate(result)
    assert best.number == 1
    assert pick(result, best, 0.5).number == 3
    assert pick(result, best, 0.4).number == 2  # 1.2 ms: only #2 and #4 fit
    assert pick(result, best, 0.1).number == 4  # nothing fits: the fastest


def test_unknown_data_is_an_error_naming_the_choices(capsys):
    assert main(["demo", "--data", "no_such_data", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no_such_data" in err and "digits" in err and "package.module:function" in err
