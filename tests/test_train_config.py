"""TrainConfig (nasforge.train.config): every training option defined, defaulted,
validated and normalised once, field by field (what each accepts, the messages that name it,
the dict forms), and taken whole by the Trainer, the training evaluator, the Distiller and the
YAML loaders."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.cli.compress import load_config
from nasforge.cli.search import load_search_config
from nasforge.errors import ConfigError
from nasforge.train.config import TrainConfig, resolve_device


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


# --- field by field: defaults, accepted values, messages, dict forms ------------------------
def refusal(**options) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        TrainConfig(**options)
    return info.value


def test_defaults():
    assert TrainConfig().to_dict() == {
        "epochs": 10,
        "batch_size": 64,
        "eval_batch_size": 512,
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "momentum": 0.9,
        "lr_schedule": None,
        "schedule_epochs": None,
        "loss": "cross_entropy",
        "label_smoothing": 0.0,
        "grad_clip": None,
        "seed": 0,
        "device": "auto",
        "progress": None,
        "num_workers": 0,
    }
    assert tuple(TrainConfig().to_dict()) == TrainConfig.FIELDS


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer, but got 0"),
        ({"batch_size": 0}, "batch_size must be a positive integer, but got 0"),
        ({"eval_batch_size": 2.0}, "eval_batch_size must be a positive integer, but got 2.0"),
        ({"lr": 0}, "lr must be a positive number, but got 0"),
        ({"weight_decay": -0.1}, "weight_decay must be a number >= 0, but got -0.1"),
        ({"momentum": -1}, "momentum must be a number >= 0, but got -1"),
        ({"schedule_epochs": 0}, "schedule_epochs must be a positive integer or None, but got 0"),
        (
            {"label_smoothing": 1.0},
            "label_smoothing must be a number in [0, 1), but got 1.0",
        ),
        ({"label_smoothing": -0.1}, "label_smoothing must be a number in [0, 1), but got -0.1"),
        ({"grad_clip": 0}, "grad_clip must be a positive number or None, but got 0"),
        ({"seed": -1}, "seed must be a non-negative integer, but got -1"),
        ({"num_workers": -1}, "num_workers must be a non-negative integer, but got -1"),
        ({"progress": 1}, "progress must be True, False or None (automatic), but got 1"),
        ({"device": "gpu9"}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', but got 'gpu9'"),
        ({"device": 3.5}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', but got 3.5"),
    ],
)
def test_each_field_is_checked_and_named(options, message):
    error = refusal(**options)
    assert str(error) == message
    assert error.field == next(iter(options))


def test_names_are_matched_in_any_case_and_listed_when_unknown():
    config = TrainConfig(optimizer="RMSprop", lr_schedule="OneCycle", loss="CROSS_ENTROPY")
    assert (config.optimizer, config.lr_schedule, config.loss) == (
        "rmsprop",
        "onecycle",
        "cross_entropy",
    )
    assert TrainConfig(lr_schedule="None").lr_schedule is None
    assert TrainConfig(lr_schedule="step").lr_schedule == "step"
    error = refusal(optimizer="adamm")
    assert str(error).startswith(
        "optimizer must be one of 'sgd', 'adam', 'adamw', 'rmsprop', but got 'adamm'"
    )
    error = refusal(lr_schedule="linear")
    assert str(error) == (
        "lr_schedule must be one of 'none', 'cosine', 'step', 'onecycle', but got 'linear'. "
        "HINT: Did you mean 'cosine'?"
    )
    error = refusal(loss="mse")
    assert str(error) == "loss must be one of 'cross_entropy', but got 'mse'"


def test_callables_are_taken_as_they_are_and_other_values_refused():
    def optimizer(params):
        return torch.optim.SGD(params, lr=0.1)

    def schedule(opt):
        return torch.optim.lr_scheduler.StepLR(opt, 1)

    def loss(outputs, targets):
        return (outputs - targets).abs().mean()

    config = TrainConfig(optimizer=optimizer, lr_schedule=schedule, loss=loss)
    assert (config.optimizer, config.lr_schedule, config.loss) == (optimizer, schedule, loss)
    assert TrainConfig(optimizer=torch.optim.SGD).optimizer is torch.optim.SGD
    assert str(refusal(optimizer=3)) == (
        "optimizer must be one of ['adam', 'adamw', 'rmsprop', 'sgd'], a class or a callable, "
        "but got 3"
    )
    assert str(refusal(lr_schedule=5)) == (
        "lr_schedule must be one of ['none', 'cosine', 'step', 'onecycle'], a callable or None, "
        "but got 5"
    )
    assert str(refusal(loss=None)) == "loss must be 'cross_entropy' or a callable, but got None"


def test_numbers_are_stored_as_floats_and_bounds_are_inclusive():
    config = TrainConfig(lr=1, weight_decay=0, momentum=0, label_smoothing=0, grad_clip=2)
    assert (config.lr, config.weight_decay, config.momentum, config.grad_clip) == (1.0, 0, 0, 2)
    assert all(
        type(v) is float
        for v in (config.lr, config.weight_decay, config.momentum, config.label_smoothing)
    )
    assert type(config.grad_clip) is float
    assert TrainConfig(label_smoothing=0.999).label_smoothing == 0.999
    assert TrainConfig(epochs=1, batch_size=1, eval_batch_size=1, schedule_epochs=1).epochs == 1
    assert TrainConfig(seed=0, num_workers=0, progress=False).progress is False
    for bad in (math.nan, math.inf, True, "0.1"):
        assert refusal(lr=bad).field == "lr"


def test_from_dict_names_the_section_and_the_option():
    config = TrainConfig.from_dict({"epochs": 3, "lr": 0.1})
    assert config == TrainConfig(epochs=3, lr=0.1)
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"epochs": 0}, field="trainer")
    assert (info.value.field, str(info.value)) == (
        "trainer.epochs",
        "trainer.epochs must be a positive integer, but got 0",
    )
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"epoch": 2})
    assert info.value.field == "training.epoch"
    assert str(info.value) == (
        f"training.epoch must be one of the training options {', '.join(TrainConfig.FIELDS)}, "
        "but got 2. HINT: unknown option. Did you mean 'epochs' or 'schedule_epochs'?"
    )
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"zzz": 2}, field=None)
    assert info.value.field == "zzz"
    assert str(info.value).endswith("but got 2. HINT: unknown option.")
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"epochs": 0}, field=None)
    assert (info.value.field, str(info.value)) == (
        "epochs",
        "epochs must be a positive integer, but got 0",
    )


@pytest.mark.parametrize(("field", "name"), [("training", "training"), (None, "options")])
def test_from_dict_takes_a_mapping(field, name):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict([("epochs", 3)], field=field)
    assert (info.value.field, str(info.value)) == (
        name,
        f"{name} must be a mapping of training options, but got [('epochs', 3)]",
    )


def test_replace_is_checked_and_names_the_option_alone():
    config = TrainConfig(epochs=3, lr_schedule="cosine")
    assert config.replace(epochs=4) == TrainConfig(epochs=4, lr_schedule="cosine")
    with pytest.raises(ConfigError) as info:
        config.replace(batch_size=-1)
    assert info.value.field == "batch_size"
    assert config.epochs == 3  # the original is unchanged


def test_describe_gives_plain_data():
    def my_loss(outputs, targets):
        return outputs.sum()

    config = TrainConfig(
        optimizer=torch.optim.SGD, loss=my_loss, device=torch.device("cpu"), grad_clip=1.0
    )
    described = config.describe()
    assert described["optimizer"] == "torch.optim.sgd.SGD"
    assert described["loss"] == (f"{__name__}.test_describe_gives_plain_data.<locals>.my_loss")
    assert described["device"] == "cpu"
    assert (described["grad_clip"], described["lr_schedule"], described["epochs"]) == (
        1.0,
        None,
        10,
    )
    assert (described["progress"], described["optimizer"] != "adam") == (None, True)
    assert TrainConfig(progress=True).describe()["progress"] is True

    class Callable:
        def __call__(self, outputs, targets):
            return outputs.sum()

    described = TrainConfig(loss=Callable()).describe()["loss"]
    assert described == f"{__name__}.test_describe_gives_plain_data.<locals>.Callable"

    class Anonymous(Callable):  # a callable that cannot say which module it is from
        def __getattribute__(self, name):
            if name == "__module__":
                raise AttributeError(name)
            return super().__getattribute__(name)

    described = TrainConfig(loss=Anonymous()).describe()["loss"]
    assert described == "?.test_describe_gives_plain_data.<locals>.Anonymous"


def test_resolve_device():
    cpu = torch.device("cpu")
    assert resolve_device(cpu) is cpu
    assert resolve_device("cpu") == cpu
    assert resolve_device("AUTO") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device() == resolve_device("auto")
    with pytest.raises(ConfigError) as info:
        resolve_device("tpu:x")
    assert info.value.field == "device"


def test_auto_picks_cuda_when_it_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("Auto") == torch.device("cpu")
