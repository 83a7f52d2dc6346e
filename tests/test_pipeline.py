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


def test_copy_false_times_the_model_before_the_steps_change_it(small_trainer):
    class Spy(Compressor):
        """Notes how often the model ran before this step."""

        def apply(self, model, trainer):
            self.calls = model.calls
            return model

    seen = {}
    for latency in (False, True):
        spy = Spy()
        pipeline = Pipeline(
            [spy], copy=False, latency=latency, batch_sizes=(1,), repeats=5, warmup=2
        )
        _, report = pipeline.run(CountingCNN(), small_trainer)
        seen[latency] = spy.calls
    assert seen[True] - seen[False] == 2 + 5  # timed (warmup + repeats) before the step
    assert "latency_ms_b1" in report.before and "latency_ms_b1" in report.after


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
