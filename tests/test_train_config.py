"""TrainConfig: every training option defined, defaulted, validated and normalised once,
and taken whole by the Trainer, the training evaluator, the Distiller and the YAML loaders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.cli.compress import load_config
from nasforge.cli.search import load_search_config


def test_names_are_matched_in_any_case_and_normalised_once():
    config = nf.TrainConfig(optimizer="AdamW", lr_schedule="Cosine", loss="Cross_Entropy")
    assert (config.optimizer, config.lr_schedule, config.loss) == (
        "adamw",
        "cosine",
        "cross_entropy",
    )
    assert nf.TrainConfig(lr_schedule="NONE").lr_schedule is None


@pytest.mark.parametrize("name", ["cosine", "Cosine", "COSINE"])
def test_a_cosine_schedule_in_any_case_anneals_by_the_cosine(synthetic_bundle, tiny_mlp, name):
    trainer = nf.Trainer(synthetic_bundle, epochs=4, lr=0.1, lr_schedule=name, progress=False)
    lrs = trainer.fit(tiny_mlp())["lr"]
    expected = [0.05 * (1 + torch.cos(torch.tensor(torch.pi * e / 4))).item() for e in range(4)]
    assert lrs == pytest.approx(expected)


def test_replace_checks_again_and_refuses_unknown_names():
    config = nf.TrainConfig(epochs=3)
    assert config.replace(lr=0.1) == nf.TrainConfig(epochs=3, lr=0.1)
    with pytest.raises(nf.ConfigError, match="epochs must be a positive integer"):
        config.replace(epochs=0)
    with pytest.raises(nf.ConfigError, match=r"epoch.*Did you mean 'epochs'"):
        config.replace(epoch=2)


def test_from_dict_names_the_section():
    with pytest.raises(nf.ConfigError, match=r"trainer\.lr must be a positive number") as info:
        nf.TrainConfig.from_dict({"lr": -1}, field="trainer")
    assert info.value.field == "trainer.lr"
    with pytest.raises(nf.ConfigError, match=r"training\.lrate"):
        nf.TrainConfig.from_dict({"lrate": 0.1})


def test_the_trainer_takes_a_config_or_its_fields_and_reads_them_as_attributes():
    config = nf.TrainConfig(epochs=3, lr=0.01)
    assert nf.Trainer(config=config).config == config
    trainer = nf.Trainer(config=config, lr=0.5)
    assert trainer.config == config.replace(lr=0.5)
    assert (trainer.lr, trainer.epochs) == (0.5, 3)
    with pytest.raises(nf.ConfigError, match="config must be a TrainConfig"):
        nf.Trainer(config={"epochs": 3})
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        trainer.nope  # noqa: B018


def test_with_options_keeps_the_data_and_changes_only_the_options(synthetic_bundle):
    trainer = nf.Trainer(synthetic_bundle, epochs=2, seed=3)
    changed = trainer.with_options(epochs=5)
    assert changed.train_data is trainer.train_data and changed.config.seed == 3
    assert (changed.epochs, trainer.epochs) == (5, 2)


def test_the_training_evaluator_takes_the_whole_config(synthetic_bundle):
    space = nf.build("space", "mlp", max_depth=1, widths=[8])
    config = nf.TrainConfig(epochs=2, lr=0.01, lr_schedule="Step", label_smoothing=0.1)
    evaluator = nf.TrainEvaluator(space, synthetic_bundle, config=config, latency=False)
    assert evaluator.config.lr_schedule == "step"
    assert evaluator.config.schedule_epochs == 2  # a named schedule lasts the largest budget
    assert evaluator.config.progress is False  # trials may run in parallel workers
    assert evaluator.settings["label_smoothing"] == 0.1
    with pytest.raises(nf.ConfigError, match="onecycle"):
        nf.TrainEvaluator(space, synthetic_bundle, lr_schedule="OneCycle")


def test_the_distiller_takes_training_overrides(synthetic_bundle, tiny_mlp):
    teacher = tiny_mlp()
    distiller = nf.Distiller(teacher=teacher, training={"epochs": 2, "lr": 0.05})
    trainer = nf.Trainer(synthetic_bundle, epochs=7, progress=False)
    seen = []

    class Spy(nf.Callback):
        def on_fit_begin(self, trainer, state):
            seen.append((state.epochs, trainer.config.lr))

    trainer.callbacks.append(Spy())
    distiller.apply(tiny_mlp(), trainer)
    assert seen == [(2, 0.05)]
    with pytest.raises(nf.ConfigError, match=r"training\.epochs"):
        nf.Distiller(teacher=teacher, training={"epochs": True})


def test_both_yaml_loaders_build_a_train_config(tmp_path):
    search = load_search_config(
        {
            "space": "mlp",
            "data": "digits",
            "budget": 2,
            "training": {"epochs": 2, "optimizer": "SGD", "latency": False},
        }
    )
    assert search.training == nf.TrainConfig(epochs=2, optimizer="sgd")
    assert search.latency is None
    compress = load_config(
        {
            "model": "resnet18",
            "data": "digits",
            "trainer": {"epochs": 2, "lr_schedule": "Cosine"},
            "compressors": ["int8"],
        }
    )
    assert compress.trainer == nf.TrainConfig(epochs=2, lr_schedule="cosine")
    with pytest.raises(nf.ConfigError, match=r"trainer\.batch_size"):
        load_config(
            {
                "model": "resnet18",
                "data": "digits",
                "compressors": ["int8"],
                "trainer": {"batch_size": "64"},
            }
        )


def test_data_bundles_are_accepted_by_fit_evaluate_and_predict():
    data = nf.load_dataset("synthetic", num_samples=90, input_shape=(4,), num_classes=3, seed=1)
    model = nn.Sequential(nn.Linear(4, 3))
    trainer = nf.Trainer(epochs=1, progress=False)
    history = trainer.fit(model, data)
    assert "val_accuracy" in history.last  # the bundle's validation split was used
    assert trainer.evaluate(model, data) == trainer.evaluate(model, data.test)
    assert trainer.predict(model, data).shape == (len(data.test), 3)


@pytest.mark.parametrize("progress", [None, True, False])
def test_progress_none_means_bars_only_on_a_terminal(monkeypatch, progress):
    from nasforge._progress import progress_enabled

    for tty in (True, False):
        monkeypatch.setattr("sys.stderr.isatty", lambda tty=tty: tty)
        assert progress_enabled(progress) is (tty if progress is None else progress)
    assert nf.TrainConfig().progress is None
