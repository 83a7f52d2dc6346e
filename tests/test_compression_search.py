"""Compression as search dimensions: CompressedSpace and CompressionEvaluator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.export import is_quantized

BASE = {"max_stages": 2, "channels": [8, 16], "kernels": [3], "max_blocks": 1}


@pytest.fixture(scope="module")
def space():
    return nf.build(
        "space",
        "compressed",
        base=nf.build("space", "cnn", **BASE),
        prune=[0.0, 0.5],
        distill=[0.0, 0.9],
    )


@pytest.fixture(scope="module")
def evaluator(space):
    data = nf.load_dataset("digits", seed=0)
    return nf.CompressionEvaluator(
        space, data, epochs=2, lr=3e-3, finetune_epochs=1, latency={"repeats": 3, "warmup": 1}
    )


def _arch(space, prune, int8, distill=None, **base):
    values = {"stages": 1, "channels_1": 16, "kernel_1": 3, "blocks_1": 1, "pooling": "max"}
    values.update(base, **{"compress.prune": prune, "compress.int8": int8})
    if distill is not None:
        values["compress.distill"] = distill
    return space.arch(values)


def test_the_space_adds_compression_choices_to_the_architecture(space):
    names = [p.name for p in space.params]
    assert names[-3:] == ["compress.prune", "compress.int8", "compress.distill"]
    unpruned = _arch(space, 0.0, True)
    assert "compress.distill" not in unpruned  # distillation only follows pruning
    base, choice = space.split(_arch(space, 0.5, False, 0.9))
    assert choice == {"prune": 0.5, "distill": 0.9, "int8": False}
    assert base.key == space.base.arch(dict(base)).key and "compress.prune" not in base
    net = space.build(unpruned, input_shape=(1, 8, 8), num_classes=10)
    assert nf.count_params(net) == nf.count_params(
        space.base.build(base, input_shape=(1, 8, 8), num_classes=10)
    )
    assert nf.Space.from_dict(space.to_dict()) == space
    assert nf.Space.from_yaml(space.to_yaml()) == space


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"prune": [1.0]}, "compressed.prune"),
        ({"prune": "0.5"}, "compressed.prune"),
        ({"distill": [1.5]}, "compressed.distill"),
        ({"int8": ["yes"]}, "compressed.int8"),
        ({"int8": []}, "compressed.int8"),
        ({"base": 3}, "compressed.base"),
        ({"base": "no_such_space"}, "space"),
    ],
)
def test_bad_compression_choices_are_refused(options, field):
    with pytest.raises(nf.NasforgeError, match=field):
        nf.build("space", "compressed", **options)


def test_a_space_with_a_single_pruning_choice_has_no_distillation_choice():
    space = nf.build("space", "compressed", base="mlp", prune=[0.0], int8=[True])
    assert [p.name for p in space.params][-2:] == ["compress.prune", "compress.int8"]
    assert space.split(space.sample(seed=0))[1] == {"prune": 0.0, "distill": 0.0, "int8": True}
    with pytest.raises(ConfigError, match="CompressedSpace"):
        nf.CompressionEvaluator(space.base, "digits")


def test_compressed_models_are_measured_as_deployed(space, evaluator):
    dense = evaluator.evaluate(_arch(space, 0.0, False))
    pruned = evaluator.evaluate(_arch(space, 0.5, False, 0.0))
    quantized = evaluator.evaluate(_arch(space, 0.0, True))
    assert set(dense) == set(evaluator.metrics)
    assert dense["val_acc"] == dense["base_val_acc"]  # nothing was compressed
    assert pruned["params"] < 0.6 * dense["params"]
    assert is_quantized(evaluator.load_model(_arch(space, 0.0, True)))
    assert quantized["val_acc"] == pytest.approx(dense["val_acc"], abs=0.05)  # int8 costs little
    # the architecture was trained once and compressed three ways
    assert pruned["base_val_acc"] == quantized["base_val_acc"] == dense["base_val_acc"]
    assert pruned["train_seconds"] == dense["train_seconds"]


def test_distillation_changes_the_fine_tuning_of_a_pruned_model(space, evaluator):
    plain = evaluator.load_model(_arch(space, 0.5, False, 0.0))
    distilled = evaluator.load_model(_arch(space, 0.5, False, 0.9))
    x = torch.randn(4, 1, 8, 8)
    assert nf.count_params(plain) == nf.count_params(distilled)
    assert not torch.allclose(plain(x), distilled(x))


def test_every_front_member_exports_as_it_was_measured(space, evaluator, tmp_path):
    result = nf.search(
        space,
        evaluator,
        strategy="random",
        budget=6,
        seed=1,
        objective=["val_acc", "latency_ms"],
        mode=["max", "min"],
        progress=False,
    )
    front = result.pareto_front()
    assert front
    val = evaluator.trainer.engine.val_data
    for trial in front:
        model = evaluator.load_model(trial.arch)
        path = nf.export_torchscript(
            model, tmp_path / f"{trial.number}.ts", torch.zeros(1, 1, 8, 8)
        )
        exported = torch.jit.load(str(path))
        accuracy = nf.Trainer(val, progress=False).evaluate(exported, val)["accuracy"]
        assert accuracy == pytest.approx(trial.metrics["val_acc"], abs=1e-9)
    assert "test_acc" in result.best.metrics
    written = result.save(tmp_path / "results")
    assert written["model"].suffix == (".ts" if result.best.arch["compress.int8"] else ".pt")


def test_a_compression_aware_search_runs_from_yaml(tmp_path, capsys):
    import yaml

    from nasforge.cli import main

    example = Path(__file__).resolve().parents[1] / "examples" / "configs"
    config = yaml.safe_load((example / "search_compressed_digits.yaml").read_text())
    config["space"]["options"]["base"]["options"] = BASE
    config.update(budget=4, executor=None)
    config["training"].update(epochs=1)
    config["evaluator"]["options"]["finetune_epochs"] = 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    assert main(["search", str(path), "--out", str(out), "--no-progress"]) == 0
    assert "4 finished" in capsys.readouterr().out
    best = json.loads((out / "best.json").read_text())
    assert {"compress.prune", "compress.int8"} <= set(best["arch"])
    assert {"size_bytes", "base_val_acc", "test_acc"} <= set(best["metrics"])
    assert (out / "best_model.pt").exists() or (out / "best_model.ts").exists()


def test_the_compression_evaluator_needs_a_compressed_space_in_yaml(tmp_path):
    from nasforge.cli.search import load_search_config

    config = {
        "space": {"name": "cnn"},
        "data": {"name": "digits"},
        "evaluator": "compression",
        "strategy": "random",
        "budget": 2,
    }
    with pytest.raises(ConfigError, match="'compressed' with evaluator 'compression'"):
        load_search_config(config)
