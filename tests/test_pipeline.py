"""The compression pipeline and its report."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.compress import CompressionReport, Compressor, Pipeline
from nasforge.errors import ConfigError


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 4, 10),
    )


@pytest.fixture(scope="module")
def trained():
    data = nf.load_dataset("digits", seed=0)
    trainer = nf.Trainer(data, epochs=2, lr=3e-3, progress=False)
    model = _cnn()
    trainer.fit(model)
    return model, trainer


def test_prune_then_int8_reports_both_savings(trained):
    model, trainer = trained
    original = {k: v.clone() for k, v in model.state_dict().items()}
    steps = [
        nf.build("compressor", "channel_prune", ratio=0.5, finetune_epochs=1),
        nf.build("compressor", "int8", calibration_batches=4),
    ]
    small, report = trainer.compress(model, steps, batch_sizes=(1, 8), repeats=3)
    assert isinstance(report, CompressionReport)
    before, after = report.before, report.after
    assert set(before) == set(after) >= {
        "accuracy", "params", "macs", "size_bytes", "latency_ms_b1", "latency_ms_b8",
    }  # fmt: skip
    assert after["macs"] < 0.4 * before["macs"]
    pruned_size = report.steps[0]["size_bytes"]
    assert pruned_size < before["size_bytes"] / 2.5  # ~4x fewer weights...
    assert after["size_bytes"] < pruned_size / 1.5  # ...then int8 (tiny model: headers count)
    assert after["accuracy"] > before["accuracy"] - 0.1
    assert [s["name"] for s in report.steps] == ["channel_prune", "int8"]
    assert report.steps[0]["stats"]["channels_after"] == 48
    assert small(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    # the input model is untouched (it may be a distillation teacher)
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())
    data = json.loads(report.to_json())
    assert data["ratios"]["macs_reduction"] > 2.5
    assert "speedup_b1" in data["ratios"]
    table = report.table()
    assert "channel_prune -> int8" in table and "latency batch 1" in table


def test_a_users_compressor_slots_in(trained):
    model, trainer = trained

    class Halve(Compressor):
        name = "halve"

        def apply(self, model, trainer):
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(0.5)
            self.stats = {"factor": torch.tensor(0.5)}
            return model

    _, report = Pipeline([Halve()], latency=False).run(model, trainer)
    assert report.steps[0]["stats"] == {"factor": 0.5}
    assert "latency_ms_b1" not in report.after
    assert report.before["params"] == report.after["params"]
    json.dumps(report.to_dict())


def test_pipeline_validation(trained):
    with pytest.raises(ConfigError, match=r"compressors\[1\]"):
        Pipeline([nf.build("compressor", "channel_prune"), "int8"])
    with pytest.raises(ConfigError, match="batch_sizes"):
        Pipeline([], batch_sizes=(0,))

    class Broken(Compressor):
        def apply(self, model, trainer):
            return None

    model, trainer = trained
    with pytest.raises(ConfigError, match=r"not an nn\.Module"):
        Pipeline([Broken()], latency=False).run(model, trainer)
