"""TrainEvaluator: data forms, shapes, determinism, continuation, checkpoints, test()."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import nasforge as nf
from nasforge.errors import CheckpointError, ConfigError, TrainingDivergedError
from nasforge.evaluators import TrainEvaluator
from nasforge.measure import LatencyOptions
from nasforge.nas.evaluator import Evaluator

VARYING = ("latency_ms", "train_seconds")  # wall-clock metrics


def _data(shape=(6,), n=150, classes=3, seed=0):
    return nf.load_dataset(
        "synthetic", num_samples=n, input_shape=shape, num_classes=classes, noise=0.5, seed=seed
    )


def _xy(split):
    return split.tensors


@pytest.fixture
def mlp():
    return nf.build("space", "mlp", max_depth=2, widths=(8, 16), max_dropout=0.0)


@pytest.fixture
def cnn():
    return nf.build("space", "cnn", max_stages=2, channels=(4, 8), kernels=(3,), max_blocks=1)


def _evaluator(space, data, **options):
    options = {"epochs": 2, "batch_size": 32, "lr": 1e-2, "latency": False, **options}
    return TrainEvaluator(space, data, **options)


def _stable(metrics):
    return {k: v for k, v in metrics.items() if k not in VARYING}


class _ListDataset(Dataset):
    """A plain map-style Dataset with neither tensors nor a ``targets`` attribute."""

    def __init__(self, x, y):
        self.items = [(x[i], int(y[i])) for i in range(len(y))]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _forms():
    bundle = _data()
    (xt, yt), (xv, yv), (xs, ys) = (_xy(s) for s in (bundle.train, bundle.val, bundle.test))
    x, y = torch.cat([xt, xv]), torch.cat([yt, yv])
    return {
        "bundle": bundle,
        "pair": (x, y),
        "numpy": (x.double().numpy(), y.numpy()),
        "train_val": ((xt, yt), (xv, yv)),
        "train_val_test": ((xt, yt), (xv, yv), (xs, ys)),
        "dataset": TensorDataset(x, y),
        "plain_dataset": _ListDataset(x, y),
        "loaders": (DataLoader(TensorDataset(xt, yt), batch_size=16), (xv.numpy(), yv.numpy())),
        "no_test": ((xt, yt), TensorDataset(xv.double(), yv.int()), None),
    }


@pytest.mark.parametrize("form", list(_forms()))
def test_every_data_form_trains(form, mlp):
    evaluator = _evaluator(mlp, _forms()[form], epochs=1)
    assert evaluator.input_shape == (6,)
    assert evaluator.num_classes == 3
    metrics = evaluator.evaluate(mlp.sample(seed=0))
    assert 0 <= metrics["val_acc"] <= 1 and metrics["epochs"] == 1.0
    assert all(isinstance(v, float) for v in metrics.values())


def test_dataset_name_and_registry(mlp):
    evaluator = nf.build(
        "evaluator", "train", space=mlp, data="digits", epochs=2, lr=1e-2, latency=False
    )
    assert isinstance(evaluator, Evaluator)
    assert (evaluator.input_shape, evaluator.num_classes) == ((1, 8, 8), 10)
    assert evaluator.evaluate(mlp.sample(seed=0))["val_acc"] > 0.5
    assert nf.get("evaluator", "train") is TrainEvaluator


def test_single_pair_is_split_stratified_with_the_seed(mlp):
    x, y = torch.randn(100, 4), torch.arange(100) % 4
    evaluator = _evaluator(mlp, (x, y), val_fraction=0.2, seed=3)
    val_labels = evaluator.trainer.val_data.tensors[1]
    assert len(val_labels) == 20 and torch.bincount(val_labels).tolist() == [5, 5, 5, 5]
    again = _evaluator(mlp, (x, y), val_fraction=0.2, seed=3).trainer.val_data.tensors[0]
    assert torch.equal(evaluator.trainer.val_data.tensors[0], again)


@pytest.mark.parametrize(
    ("space_name", "shape"),
    [("mlp", (6,)), ("mlp", (2, 5)), ("mlp", (1, 4, 4)), ("cnn", (2, 12)), ("cnn", (1, 6, 6))],
)
def test_shapes_reach_the_built_model(space_name, shape, mlp, cnn):
    space = mlp if space_name == "mlp" else cnn
    evaluator = _evaluator(space, _data(shape), epochs=1)
    arch = space.sample(seed=1)
    metrics = evaluator.evaluate(arch)
    assert metrics["params"] > 0 and metrics["macs"] > 0
    x, _ = _xy(_data(shape).val)
    assert evaluator.load_model(arch)(x).shape == (len(x), 3)


def test_vectors_become_one_channel_signals_for_the_cnn_space(cnn):
    data = _data((12,))
    evaluator = _evaluator(cnn, data, epochs=1)
    arch = cnn.sample(seed=0)
    model = evaluator.load_model(arch)
    assert isinstance(model[0], nn.Unflatten)  # (N, 12) -> (N, 1, 12) inside the model
    assert isinstance(model[1][0], nn.Conv1d) and model[1][0].in_channels == 1
    x, _ = _xy(data.val)
    assert model(x).shape == (len(x), 3)  # it takes the data as given
    same = cnn.build(arch, input_shape=(1, 12), num_classes=3)
    assert evaluator.measure(arch)["macs"] == nf.count_macs(same, (1, 12))


def test_same_seed_same_metrics_other_seed_other_metrics(cnn):
    data = _data((1, 6, 6))
    arch = cnn.sample(seed=2)
    first = _evaluator(cnn, data, seed=5).evaluate(arch)
    second = _evaluator(cnn, data, seed=5).evaluate(arch)
    assert _stable(first) == _stable(second)
    assert _evaluator(cnn, data, seed=6).evaluate(arch)["val_loss"] != first["val_loss"]


def test_an_augmented_loader_is_rewound_for_every_trial(tmp_path, mlp):
    from nasforge.train.augment import AugmentedLoader, GaussianNoise

    data = _data()
    loader = AugmentedLoader(*data.train.tensors, transform=GaussianNoise(0.3), batch_size=32)
    arch = mlp.sample(seed=0)
    evaluator = _evaluator(mlp, (loader, data.val), epochs=3, checkpoint_dir=tmp_path)
    first = _stable(evaluator.evaluate(arch, budget=1))
    resumed = _stable(evaluator.evaluate(arch, budget=3))
    evaluator.checkpoint_path(arch).unlink()
    assert _stable(evaluator.evaluate(arch, budget=1)) == first
    assert _stable(evaluator.evaluate(arch, budget=3)) == resumed
    straight = _evaluator(mlp, (loader, data.val), epochs=3)
    assert _stable(straight.evaluate(arch)) == resumed


def test_measure_counts_without_training(mlp):
    evaluator = _evaluator(
        mlp, _data(), latency=LatencyOptions(batch_size=4, threads=1, warmup=1, repeats=3)
    )
    arch = mlp.arch({"depth": 1, "width_1": 8, "activation": "relu", "norm": "none"})
    measured = evaluator.measure(arch)
    assert measured["params"] == 6 * 8 + 8 + 8 * 3 + 3
    assert measured["macs"] == 6 * 8 + 8 * 3
    assert measured["latency_ms"] > 0
    assert "latency_ms" not in _evaluator(mlp, _data()).measure(arch)
    assert _evaluator(mlp, _data(), latency={"repeats": 2}).latency == LatencyOptions(repeats=2)


def test_continuation_equals_training_straight_through(tmp_path, cnn):
    data = _data((2, 12))
    arch = cnn.sample(seed=3)
    options = {"epochs": 4, "lr_schedule": "cosine", "checkpoint_dir": tmp_path}
    resumed = _evaluator(cnn, data, **options)
    two = resumed.evaluate(arch, budget=2)
    four = resumed.evaluate(arch, budget=4.0)
    assert (two["epochs"], four["epochs"]) == (2.0, 4.0)
    straight = _evaluator(cnn, data, epochs=4, lr_schedule="cosine").evaluate(arch)
    assert _stable(four) == _stable(straight)  # bit-identical: weights, optimizer, RNG, schedule
    fresh = _evaluator(cnn, data, epochs=4, lr_schedule="cosine").load_model(arch).state_dict()
    for name, tensor in resumed.load_model(arch).state_dict().items():
        assert torch.equal(tensor, fresh[name])
    # a budget already reached is answered from the recorded history, without training
    again = resumed.evaluate(arch, budget=2)
    assert again["train_seconds"] == 0.0 and _stable(again) == _stable(two)
    assert resumed.checkpoint_path(arch).parent == tmp_path
    assert nf.load_checkpoint(resumed.checkpoint_path(arch))["epoch"] == 4


def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path, mlp):
    evaluator = _evaluator(mlp, _data(), checkpoint_dir=tmp_path)
    arch = mlp.sample(seed=0)
    path = evaluator.checkpoint_path(arch)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"(?s)cannot be read.*delete it"):
        evaluator.evaluate(arch)
    torch.save({"format": "nasforge.checkpoint/1", "epoch": 1}, path)
    with pytest.raises(CheckpointError, match="history"):
        evaluator.evaluate(arch)


def test_checkpoint_dir_of_other_settings_is_refused(tmp_path, mlp):
    _evaluator(mlp, _data(), checkpoint_dir=tmp_path)
    _evaluator(mlp, _data(), checkpoint_dir=tmp_path)  # same settings: fine
    with pytest.raises(ConfigError, match=r"lr: 0\.01 there, 0\.1 here"):
        _evaluator(mlp, _data(), checkpoint_dir=tmp_path, lr=0.1)


def test_checkpoint_dir_of_other_data_is_refused(tmp_path, mlp):
    _evaluator(mlp, _data(seed=0), checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="data_sha256"):
        _evaluator(mlp, _data(seed=1), checkpoint_dir=tmp_path)  # same sizes, other samples


@pytest.mark.parametrize("latency", [True, False])
def test_metrics_name_what_evaluate_returns(mlp, latency):
    evaluator = _evaluator(mlp, _data(), epochs=1, latency=latency)
    assert tuple(evaluator.evaluate(mlp.sample(seed=0))) == evaluator.metrics
    assert evaluator.metrics == TrainEvaluator.metric_names(latency=latency)
    assert ("latency_ms" in evaluator.metrics) is latency


def test_identity_follows_the_data_and_settings(mlp):
    same = _evaluator(mlp, _data()).identity()
    assert _evaluator(mlp, _data()).identity() == same
    assert _evaluator(mlp, _data(seed=1)).identity() != same
    assert _evaluator(mlp, _data(), lr=0.1).identity() != same
    plain = _evaluator(mlp, _forms()["plain_dataset"]).identity()
    assert plain["data_sha256"] is None and plain["train_size"] + plain["val_size"] == 120


def test_test_and_load_model(tmp_path, mlp):
    data = _data()
    arch = mlp.sample(seed=4)
    evaluator = _evaluator(mlp, data, checkpoint_dir=tmp_path)
    metrics = evaluator.evaluate(arch)
    model = evaluator.load_model(arch)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    on_val = evaluator.trainer.evaluate(model, data.val)
    assert on_val["accuracy"] == metrics["val_acc"]
    scores = evaluator.test(arch)
    assert set(scores) == {"test_acc", "test_loss", "test_f1"}
    assert scores["test_acc"] == evaluator.trainer.evaluate(model, data.test)["accuracy"]
    # without a checkpoint_dir, test() trains with the full epochs: the same weights
    assert _evaluator(mlp, data).test(arch) == scores
    no_test = _evaluator(mlp, (data.train.tensors, data.val.tensors))
    with pytest.raises(ConfigError, match="no test split"):
        no_test.test(arch)


def test_evaluator_survives_pickling(mlp):
    evaluator = _evaluator(mlp, _data())
    arch = mlp.sample(seed=0)
    copy = pickle.loads(pickle.dumps(evaluator))
    assert _stable(copy.evaluate(arch)) == _stable(evaluator.evaluate(arch))


def test_divergence_propagates(mlp):
    x = torch.randn(60, 6) * 1e30
    evaluator = _evaluator(mlp, (x, torch.arange(60) % 3), optimizer="sgd", lr=1e10)
    with pytest.raises(TrainingDivergedError):
        evaluator.evaluate(mlp.sample(seed=0))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"optimizer": "adamm"}, "optimizer"),
        ({"lr_schedule": "onecycle"}, "lr_schedule"),
        ({"lr_schedule": 3}, "lr_schedule"),
        ({"seed": -1}, "seed"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"latency": "yes"}, "latency"),
        ({"latency": {"repeats": 0}}, "latency.repeats"),
        ({"latency": {"reps": 3}}, "latency.reps"),
        ({"device": "tpu:x"}, "device"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_bad_options_name_the_field(options, field, mlp):
    with pytest.raises(ConfigError) as info:
        TrainEvaluator(mlp, _data(), **options)
    assert info.value.field == field


def _bad_data():
    x, y = torch.randn(20, 4), torch.arange(20) % 2
    return {
        "lengths": ((x, y[:10]), "differ in length"),
        "float labels": ((x, y.float()), "integer class labels"),
        "negative labels": ((x, y - 1), ">= 0"),
        "empty": ((x[:0], y[:0]), "at least one sample"),
        "lone loader": (DataLoader(TensorDataset(x, y)), "train_loader, val_loader"),
        "wrong type": ("not a dataset name at all", "unknown dataset"),
        "other type": (42, "a dataset name"),
        "shape mismatch": (((x, y), (torch.randn(5, 3), y[:5])), "sample shape"),
        "scalar samples": ((torch.randn(20), y), "at least one feature"),
        "empty dataset": ((TensorDataset(x[:0], y[:0]), (x, y)), "at least one sample"),
        "three arrays": ((x.numpy(), y.numpy(), y.numpy()), "data\\[0\\] must be"),
        "too few to split": ((x[:2], y[:2]), "val_fraction"),
    }


@pytest.mark.parametrize("case", list(_bad_data()))
def test_bad_data_is_a_clear_error(case, mlp):
    data, message = _bad_data()[case]
    with pytest.raises(nf.NasforgeError, match=message):
        TrainEvaluator(mlp, data)


@pytest.mark.parametrize("budget", [0, 1.5, "2", 3, True, -1])
def test_bad_budget(budget, mlp):
    evaluator = _evaluator(mlp, _data())
    with pytest.raises(ConfigError, match=r"budget must be a whole number of epochs in \[1, 2\]"):
        evaluator.evaluate(mlp.sample(seed=0), budget=budget)


def test_numpy_budget_is_accepted(mlp):
    evaluator = _evaluator(mlp, _data(), epochs=1)
    assert evaluator.evaluate(mlp.sample(seed=0), budget=np.int64(1))["epochs"] == 1.0


def test_a_search_on_data_without_a_test_split_skips_the_test(mlp):
    bundle = _data()
    data = (bundle.train.tensors, bundle.val.tensors)  # no test split
    evaluator = _evaluator(mlp, data, epochs=1)
    assert not evaluator.has_test and _evaluator(mlp, bundle).has_test
    result = nf.search(mlp, evaluator, strategy="random", budget=2, progress=False)
    assert result.best is not None and "test_acc" not in result.best.metrics
