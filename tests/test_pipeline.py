"""The compression pipeline and its report."""

from __future__ import annotations

import json
import time

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


class Halve(Compressor):
    """Scales every weight by 0.5, in place."""

    name = "halve"

    def apply(self, model, trainer):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.5)
        return model


class CountingCNN(nn.Module):
    """A small CNN that counts its forward passes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(torch.relu(self.conv(x)))


@pytest.fixture
def small_trainer():
    data = nf.load_dataset("synthetic", num_samples=60, input_shape=(1, 8, 8), seed=0)
    return nf.Trainer(data, epochs=1, progress=False)


def test_copy_false_compresses_the_given_model_in_place(small_trainer):
    model = CountingCNN()
    original = [p.detach().clone() for p in model.parameters()]
    small, _ = Pipeline([Halve()], copy=False, latency=False).run(model, small_trainer)
    assert small is model
    assert all(torch.equal(p, 0.5 * q) for p, q in zip(model.parameters(), original, strict=True))
    kept = CountingCNN()
    small, _ = Pipeline([Halve()], latency=False).run(kept, small_trainer)  # copy=True
    assert small is not kept
    assert all(torch.equal(p, q) for p, q in zip(kept.parameters(), original, strict=True))


class Slow(nn.Module):
    """Sleeps ``seconds`` on every forward pass."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        time.sleep(self.seconds)
        return x


class SlowDown(Compressor):
    """Puts a 5 ms sleep in front of the model's head, in place (as a bad step might)."""

    name = "slow_down"

    def apply(self, model, trainer):
        model.head = nn.Sequential(Slow(0.005), model.head)
        return model


@pytest.mark.parametrize("copy", [False, True])
def test_a_step_that_makes_the_model_slower_is_warned_about(small_trainer, copy):
    pipeline = Pipeline([Halve(), SlowDown()], copy=copy, batch_sizes=(1,), repeats=3)
    with pytest.warns(nf.SlowdownWarning, match=r"step 2 \(slow_down\) made the model"):
        _, report = pipeline.run(CountingCNN(), small_trainer)
    # the model before the steps is timed as it was, even when the steps change it in place
    assert report.before["latency_ms_b1"] < 2
    assert report.steps[0]["latency_ms_b1"] < 2
    assert report.steps[1]["latency_ms_b1"] > 5
    assert report.after["latency_ms_b1"] == report.steps[1]["latency_ms_b1"]
    assert len(report.warnings) == 1 and "batch 1" in report.warnings[0]
    assert "warning: compression step 2 (slow_down)" in report.table()
    assert report.to_dict()["warnings"] == report.warnings


def test_steps_that_do_not_slow_the_model_raise_no_warning(small_trainer, recwarn):
    _, report = Pipeline([Halve()], batch_sizes=(1,), repeats=3, slowdown_tolerance=5).run(
        CountingCNN(), small_trainer
    )
    assert report.warnings == []
    assert not [w for w in recwarn if issubclass(w.category, nf.SlowdownWarning)]
    with pytest.raises(ConfigError, match="slowdown_tolerance"):
        Pipeline([Halve()], slowdown_tolerance=-0.1)


def test_input_shape_sets_the_measured_shape(small_trainer):
    model = CountingCNN()
    _, default = Pipeline([Halve()], latency=False).run(model, small_trainer)
    _, larger = Pipeline([Halve()], latency=False, input_shape=(1, 16, 16)).run(
        model, small_trainer
    )
    assert default.settings["input_shape"] == [1, 8, 8]  # the training inputs' shape
    assert larger.settings["input_shape"] == [1, 16, 16]
    assert default.before["macs"] == nf.count_macs(model, (1, 8, 8))
    assert larger.before["macs"] == nf.count_macs(model, (1, 16, 16))
    assert larger.before["macs"] > 3 * default.before["macs"]  # 4x the conv's pixels


@pytest.mark.parametrize("warmup", [0, 4])
def test_warmup_passes_precede_the_timed_ones(small_trainer, warmup):
    model = CountingCNN()  # with copy=True only the latency timing runs the original
    pipeline = Pipeline([Halve()], batch_sizes=(1, 2), repeats=3, warmup=warmup)
    _, report = pipeline.run(model, small_trainer)
    assert model.calls == 2 * (warmup + 3)  # per batch size: warmup + repeats passes
    assert report.before["latency_ms_b2"] > 0


@pytest.mark.parametrize(
    "options", [{"warmup": -1}, {"warmup": "3"}, {"input_shape": (0, 8, 8)}, {"input_shape": 8}]
)
def test_bad_measurement_options_are_refused_when_the_pipeline_is_built(options):
    with pytest.raises(ConfigError, match=next(iter(options))):
        Pipeline([Halve()], **options)
