import math

import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.train import ConfusionMatrix, resolve_device


def _trainer(bundle, **kwargs):
    options = {"epochs": 4, "batch_size": 32, "lr": 1e-2, "seed": 0, "progress": False}
    options.update(kwargs)
    return nf.Trainer(bundle, **options)


def test_fit_learns_and_records_history(synthetic_bundle, tiny_mlp):
    model = tiny_mlp()
    history = _trainer(synthetic_bundle).fit(model)
    assert len(history) == 4
    assert history["epoch"] == [1.0, 2.0, 3.0, 4.0]
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.last["val_accuracy"] > 0.9
    assert {"val_loss", "val_macro_f1", "val_macro_precision", "val_macro_recall", "lr"} <= set(
        history.last
    )
    assert history.best("val_loss")["val_loss"] == min(history["val_loss"])
    with pytest.raises(KeyError, match="Did you mean 'val_accuracy'"):
        history["val_acuracy"]


def test_same_seed_gives_identical_results(synthetic_bundle, tiny_mlp):
    runs = []
    for _ in range(2):
        model = tiny_mlp()
        history = _trainer(synthetic_bundle, seed=7).fit(model)
        runs.append((history["train_loss"], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    other = _trainer(synthetic_bundle, seed=8).fit(tiny_mlp())
    assert other["train_loss"] != runs[0][0]  # the seed drives the shuffling


def test_dataset_and_dataloader_inputs(synthetic_bundle, tiny_mlp):
    x, y = synthetic_bundle.train.tensors
    loader = torch.utils.data.DataLoader(synthetic_bundle.train, batch_size=16, shuffle=True)
    for data in [(x.numpy(), y.numpy()), loader, synthetic_bundle.train]:
        history = nf.Trainer(data, epochs=6, progress=False, lr=1e-2).fit(tiny_mlp())
        assert history.last["train_accuracy"] > 0.5
        assert "val_loss" not in history.last


@pytest.mark.parametrize(
    "optimizer",
    ["sgd", "adam", "adamw", "rmsprop", torch.optim.Adagrad, lambda p: torch.optim.SGD(p, 0.1)],
)
def test_optimizers_by_name_class_or_factory(synthetic_bundle, tiny_mlp, optimizer):
    history = _trainer(synthetic_bundle, optimizer=optimizer, epochs=3).fit(tiny_mlp())
    assert (
        history.last["train_loss"] < history["train_loss"][0] or history.last["val_accuracy"] > 0.9
    )


def _cosine(lr, epochs):
    """CosineAnnealingLR over ``epochs`` (T_max = epochs): the lr of each epoch."""
    return [lr * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)]


def _steps(lr, epochs):
    """StepLR with step_size = epochs // 3 and gamma 0.1: the lr of each epoch."""
    return [lr * 0.1 ** (e // max(1, epochs // 3)) for e in range(epochs)]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [("cosine", _cosine), ("step", _steps), (None, lambda lr, epochs: [lr] * epochs)],
)
def test_lr_schedule_shape_per_epoch(synthetic_bundle, tiny_mlp, schedule, expected):
    history = _trainer(synthetic_bundle, lr_schedule=schedule, epochs=6).fit(tiny_mlp())
    assert history["lr"] == pytest.approx(expected(1e-2, 6), rel=1e-9, abs=1e-15)


def test_onecycle_is_stepped_every_batch(synthetic_bundle, tiny_mlp):
    epochs, batches = 4, math.ceil(len(synthetic_bundle.train) / 32)
    history = _trainer(synthetic_bundle, lr_schedule="onecycle", epochs=epochs).fit(tiny_mlp())
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        reference, max_lr=1e-2, epochs=epochs, steps_per_epoch=batches
    )
    expected = []
    for _ in range(epochs):
        for _ in range(batches):
            reference.step()
            schedule.step()
        expected.append(reference.param_groups[0]["lr"])
    assert history["lr"] == pytest.approx(expected, rel=1e-9)
    # the shape: up to lr early on, then down below where it started (lr / 25)
    assert history["lr"][0] == pytest.approx(1e-2, rel=0.05)
    assert history["lr"][0] > history["lr"][1] > history["lr"][2] > history["lr"][3]
    assert history["lr"][-1] < 1e-2 / 25


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Cosine", _cosine),
        ("COSINE", _cosine),
        ("Step", _steps),
        ("None", lambda lr, epochs: [lr] * epochs),
    ],
)
def test_lr_schedule_names_are_case_insensitive(synthetic_bundle, tiny_mlp, name, expected):
    """Accepted in any case (the check lower-cases), so they must also act in any case."""
    history = _trainer(synthetic_bundle, lr_schedule=name, epochs=6).fit(tiny_mlp())
    assert history["lr"] == pytest.approx(expected(1e-2, 6), rel=1e-9, abs=1e-15)


def test_custom_schedule_factory(synthetic_bundle, tiny_mlp):
    def halve(opt):
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    history = _trainer(synthetic_bundle, lr_schedule=halve, epochs=3).fit(tiny_mlp())
    assert history["lr"] == pytest.approx([1e-2, 5e-3, 2.5e-3])


class Recorder(nf.Callback):
    def __init__(self):
        self.calls = []

    def on_fit_begin(self, trainer, state):
        self.calls.append("fit_begin")

    def on_epoch_begin(self, trainer, state):
        self.calls.append("epoch_begin")

    def on_batch_begin(self, trainer, state):
        self.calls.append("batch_begin")

    def on_loss(self, trainer, state):
        assert state.loss.requires_grad and state.outputs is not None
        self.calls.append("loss")

    def on_after_backward(self, trainer, state):
        assert all(p.grad is not None for p in state.model.parameters())
        self.calls.append("after_backward")

    def on_batch_end(self, trainer, state):
        self.calls.append("batch_end")

    def on_epoch_end(self, trainer, state):
        assert "val_loss" in state.metrics
        self.calls.append("epoch_end")

    def on_fit_end(self, trainer, state):
        self.calls.append("fit_end")


def test_callback_hooks_run_in_order(synthetic_bundle, tiny_mlp):
    recorder = Recorder()
    x, y = synthetic_bundle.train.tensors
    trainer = nf.Trainer(
        (x[:64], y[:64]), synthetic_bundle.val, epochs=2, batch_size=32, progress=False
    )
    trainer.fit(tiny_mlp(), callbacks=[recorder])
    batch = ["batch_begin", "loss", "after_backward", "batch_end"]
    epoch = ["epoch_begin", *batch, *batch, "epoch_end"]
    assert recorder.calls == ["fit_begin", *epoch, *epoch, "fit_end"]


def test_on_loss_can_replace_the_loss(synthetic_bundle, tiny_mlp):
    class ZeroLoss(nf.Callback):
        def on_loss(self, trainer, state):
            state.loss = state.loss * 0.0

    model = tiny_mlp()
    before = [p.detach().clone() for p in model.parameters()]
    _trainer(synthetic_bundle, optimizer="sgd", momentum=0.0, epochs=1).fit(
        model, callbacks=[ZeroLoss()]
    )
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_early_stopping_stops_and_restores_best(synthetic_bundle, tiny_mlp):
    class WorseEveryEpoch(nf.Callback):
        def on_epoch_end(self, trainer, state):
            state.metrics["val_score"] = -float(state.epoch)  # best at epoch 0

    stopper = nf.EarlyStopping("val_score", patience=2)
    model = tiny_mlp()
    snapshots = []

    class Snapshot(nf.Callback):
        def on_epoch_end(self, trainer, state):
            snapshots.append([p.detach().clone() for p in state.model.parameters()])

    history = _trainer(synthetic_bundle, epochs=10).fit(
        model, callbacks=[WorseEveryEpoch(), Snapshot(), stopper]
    )
    assert len(history) == 3
    assert stopper.best_epoch == 0
    assert all(torch.equal(a, b) for a, b in zip(snapshots[0], model.parameters(), strict=True))


def test_early_stopping_on_a_missing_metric_explains(synthetic_bundle, tiny_mlp):
    x, y = synthetic_bundle.train.tensors
    trainer = nf.Trainer((x, y), epochs=2, progress=False, callbacks=[nf.EarlyStopping()])
    with pytest.raises(nf.ConfigError, match="give the Trainer validation data"):
        trainer.fit(tiny_mlp())


def test_checkpoint_resume_matches_an_uninterrupted_run(synthetic_bundle, tiny_mlp, tmp_path):
    path = tmp_path / "ckpt.pt"

    def trainer():
        return _trainer(synthetic_bundle, epochs=4, lr_schedule="cosine", optimizer="sgd")

    full_model = tiny_mlp()
    full = trainer().fit(full_model)

    class Crash(nf.Callback):
        def on_epoch_end(self, trainer, state):
            if state.epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer().fit(tiny_mlp(), callbacks=[nf.ModelCheckpoint(path), Crash()])
    assert torch.load(path, weights_only=True)["epoch"] == 2
    resumed_model = tiny_mlp()  # a fresh model: everything comes from the checkpoint
    torch.manual_seed(123)  # and so does the random state
    resumed = trainer().fit(resumed_model, resume_from=path)
    assert len(resumed) == 4
    assert resumed["train_loss"] == full["train_loss"]
    assert resumed["lr"] == full["lr"]
    for a, b in zip(full_model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_keeps_the_best_epoch_only_when_asked(synthetic_bundle, tiny_mlp, tmp_path):
    path = tmp_path / "best.pt"
    history = _trainer(synthetic_bundle, epochs=4).fit(
        tiny_mlp(), callbacks=[nf.ModelCheckpoint(path, monitor="val_accuracy", save="best")]
    )
    best_epoch = history.best("val_accuracy")["epoch"]
    assert nf.load_checkpoint(path)["epoch"] == history["epoch"].index(best_epoch) + 1


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(nf.CheckpointError, match="cannot be read"):
        nf.load_checkpoint(path)
    with pytest.raises(nf.CheckpointError, match="does not exist"):
        nf.load_checkpoint(tmp_path / "missing.pt")


def test_diverging_loss_raises(synthetic_bundle, tiny_mlp):
    class Explode(nf.Callback):
        def on_loss(self, trainer, state):
            state.loss = state.loss * float("nan")

    with pytest.raises(nf.TrainingDivergedError, match="became nan in epoch 1"):
        _trainer(synthetic_bundle).fit(tiny_mlp(), callbacks=[Explode()])


def test_evaluate_metrics_match_scikit_learn(synthetic_bundle, tiny_mlp):
    metrics_module = pytest.importorskip("sklearn.metrics")
    model = tiny_mlp()
    trainer = _trainer(synthetic_bundle, epochs=1, lr=1e-3)
    trainer.fit(model)
    result = trainer.evaluate(model, synthetic_bundle.test)
    logits = trainer.predict(model, synthetic_bundle.test)
    truth = synthetic_bundle.test.tensors[1].numpy()
    predicted = logits.argmax(1).numpy()
    assert result["accuracy"] == pytest.approx(metrics_module.accuracy_score(truth, predicted))
    assert result["macro_f1"] == pytest.approx(
        metrics_module.f1_score(truth, predicted, average="macro", zero_division=0)
    )
    assert result["macro_precision"] == pytest.approx(
        metrics_module.precision_score(truth, predicted, average="macro", zero_division=0)
    )
    expected_loss = nn.functional.cross_entropy(logits, synthetic_bundle.test.tensors[1])
    assert result["loss"] == pytest.approx(expected_loss.item(), rel=1e-5)


def test_confusion_matrix_macro_scores_by_hand():
    cm = ConfusionMatrix(2)
    logits = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]])
    cm.update(logits, torch.tensor([0, 1, 1, 1]))
    scores = cm.compute()
    assert scores["accuracy"] == 0.75
    # class 0: p=1/2 r=1 f1=2/3; class 1: p=1 r=2/3 f1=0.8
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"lr": 0}, "lr"),
        ({"optimizer": "adamm"}, "optimizer"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"loss": "mse"}, "loss"),
        ({"device": "tpu"}, "device"),
        ({"callbacks": [object()]}, "callbacks"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(nf.ConfigError) as info:
        nf.Trainer(**kwargs)
    assert info.value.field == field
    assert "but got" in str(info.value)


def test_fit_without_data_or_with_a_non_module(tiny_mlp):
    with pytest.raises(nf.ConfigError, match="no training data"):
        nf.Trainer(progress=False).fit(tiny_mlp())
    with pytest.raises(nf.ConfigError, match=r"torch\.nn\.Module"):
        nf.Trainer((torch.zeros(4, 6), torch.zeros(4).long())).fit("resnet")


def test_progress_bar_can_be_turned_off(synthetic_bundle, tiny_mlp, capsys):
    _trainer(synthetic_bundle, epochs=1).fit(tiny_mlp())
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    _trainer(synthetic_bundle, epochs=1, progress=True).fit(tiny_mlp())
    assert "epoch 1/1" in capsys.readouterr().err


def test_device_auto_selection():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert nf.Trainer(progress=False).device.type == expected


def test_user_loss_function(synthetic_bundle, tiny_mlp):
    calls = []

    def loss(outputs, targets):
        calls.append(1)
        return nn.functional.cross_entropy(outputs, targets)

    history = _trainer(synthetic_bundle, loss=loss, epochs=1).fit(tiny_mlp())
    assert calls and math.isfinite(history.last["val_loss"])


def test_empty_training_data_is_a_clear_error(tiny_mlp):
    empty = (torch.zeros(0, 6), torch.zeros(0, dtype=torch.long))
    with pytest.raises(nf.ConfigError, match="training data is empty"):
        nf.Trainer(empty, epochs=1, progress=False).fit(tiny_mlp())


def test_on_batch_begin_can_replace_inputs_and_targets(synthetic_bundle, tiny_mlp):
    class ZeroInputsClassTwo(nf.Callback):
        def on_batch_begin(self, trainer, state):
            state.inputs = torch.zeros_like(state.inputs)
            state.targets = torch.full_like(state.targets, 2)

    class Spy(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.largest_input = inner, 0.0

        def forward(self, x):
            if self.training:
                self.largest_input = max(self.largest_input, x.abs().max().item())
            return self.inner(x)

    model = Spy(tiny_mlp())
    history = _trainer(synthetic_bundle, epochs=3).fit(model, callbacks=[ZeroInputsClassTwo()])
    assert model.largest_input == 0.0  # the forward pass saw the replaced inputs
    assert history.last["train_accuracy"] == 1.0  # measured against the replaced targets
    assert model(torch.zeros(1, 6)).argmax().item() == 2


def test_trainer_search_trains_each_candidate_with_its_settings():
    data = nf.load_dataset("synthetic", num_samples=300, input_shape=(6,), seed=1)
    trainer = nf.Trainer(data, epochs=2, lr=0.01, seed=3, progress=False)
    space = nf.build("space", "mlp", max_depth=2, widths=[8, 16])
    result = trainer.search(space, strategy="random", budget=3, latency=False)
    assert [t.status for t in result.trials] == [nf.TrialStatus.FINISHED] * 3
    assert all(t.metrics["epochs"] == 2 for t in result.trials) and result.seed == 3
    assert 0.0 <= result.best.metrics["test_acc"] <= 1.0  # the chosen arch is tested
    with pytest.raises(nf.ConfigError, match="train_data"):
        nf.Trainer(progress=False).search(space, strategy="random", budget=3)


def _grad_norm(model):
    return torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])
    ).item()


class GradNorms(nf.Callback):
    """The gradient norm of every batch before and after the Trainer's clipping."""

    def __init__(self):
        self.raw, self.stepped = [], []

    def on_after_backward(self, trainer, state):
        self.raw.append(_grad_norm(state.model))

    def on_batch_end(self, trainer, state):  # the optimizer stepped with these gradients
        self.stepped.append(_grad_norm(state.model))


def test_grad_clip_bounds_the_gradient_norm(synthetic_bundle, tiny_mlp):
    clipped, free = GradNorms(), GradNorms()
    _trainer(synthetic_bundle, epochs=2, grad_clip=0.05).fit(tiny_mlp(), callbacks=[clipped])
    _trainer(synthetic_bundle, epochs=2).fit(tiny_mlp(), callbacks=[free])
    assert max(clipped.raw) > 0.05  # the bound matters...
    assert max(clipped.stepped) <= 0.05 * (1 + 1e-4)  # ...and holds for every step
    for raw, stepped in zip(clipped.raw, clipped.stepped, strict=True):
        assert stepped == pytest.approx(min(raw, 0.05), rel=1e-4)  # rescaled, not zeroed
    assert free.stepped == pytest.approx(free.raw)  # no clipping unless asked


class ZeroGradients(nf.Callback):
    def on_loss(self, trainer, state):
        state.loss = state.loss * 0.0


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_weight_decay_shrinks_weights_without_gradients(synthetic_bundle, tiny_mlp, optimizer):
    steps = math.ceil(len(synthetic_bundle.train) / 32)  # one epoch of batches
    weights = {}
    for decay in (0.0, 0.5):
        model = tiny_mlp()
        before = [p.detach().clone() for p in model.parameters()]
        options = {"optimizer": optimizer, "momentum": 0.0, "lr": 0.1, "weight_decay": decay}
        _trainer(synthetic_bundle, epochs=1, **options).fit(model, callbacks=[ZeroGradients()])
        weights[decay] = (before, list(model.parameters()))
    for a, b in zip(*weights[0.0], strict=True):
        assert torch.equal(a, b)  # no gradient, no decay: nothing moves
    for a, b in zip(*weights[0.5], strict=True):  # each step: w <- w * (1 - lr * decay)
        torch.testing.assert_close(b.detach(), a * (1 - 0.1 * 0.5) ** steps)


def test_label_smoothing_gives_the_smoothed_cross_entropy(synthetic_bundle, tiny_mlp):
    seen = []

    class Losses(nf.Callback):
        def on_loss(self, trainer, state):
            seen.append((state.loss.item(), state.outputs.detach(), state.targets))

    _trainer(synthetic_bundle, epochs=1, label_smoothing=0.2).fit(tiny_mlp(), callbacks=[Losses()])
    for loss, logits, targets in seen:
        log_p = torch.log_softmax(logits, dim=1)
        nll = -log_p.gather(1, targets[:, None]).mean()
        uniform = -log_p.mean()  # cross-entropy against the uniform distribution
        assert loss == pytest.approx((0.8 * nll + 0.2 * uniform).item(), rel=1e-5)
        assert loss != pytest.approx(nll.item(), rel=1e-3)


class Scores(nf.Callback):
    """Sets ``val_score`` to the next of ``values`` after each epoch."""

    def __init__(self, values):
        self.values = list(values)

    def on_epoch_end(self, trainer, state):
        state.metrics["val_score"] = self.values[state.epoch]


@pytest.mark.parametrize("mode", ["max", "min"])
def test_early_stopping_min_delta_ignores_small_improvements(synthetic_bundle, tiny_mlp, mode):
    gains = [0.5, 0.55, 0.58, 0.59, 0.7, 0.8]  # gains of 0.01-0.05, then of 0.1
    scores = gains if mode == "max" else [-g for g in gains]  # the same, falling
    lengths = {}
    for min_delta in (0.0, 0.1):
        stopper = nf.EarlyStopping("val_score", patience=3, min_delta=min_delta, mode=mode)
        history = _trainer(synthetic_bundle, epochs=6).fit(
            tiny_mlp(), callbacks=[Scores(scores), stopper]
        )
        lengths[min_delta] = (len(history), stopper.best_epoch)
    assert lengths[0.0] == (6, 5)  # every gain counts
    assert lengths[0.1] == (4, 0)  # 0.55, 0.58, 0.59 are within 0.1 of 0.5: three stalls


def test_early_stopping_mode_overrides_the_guess(synthetic_bundle, tiny_mlp):
    falling = [1.0, 0.8, 0.6, 0.4, 0.2]
    runs = {}
    for mode in ("auto", "max", "min"):  # auto: max, as the name has no "loss" in it
        stopper = nf.EarlyStopping("val_score", patience=2, mode=mode)
        history = _trainer(synthetic_bundle, epochs=5).fit(
            tiny_mlp(), callbacks=[Scores(falling), stopper]
        )
        runs[mode] = (len(history), stopper.best_epoch)
    assert runs["auto"] == runs["max"] == (3, 0)
    assert runs["min"] == (5, 4)
    assert nf.EarlyStopping("train_loss").mode == "min"
    assert nf.EarlyStopping("train_loss", mode="max").mode == "max"
    with pytest.raises(nf.ConfigError, match="mode"):
        nf.EarlyStopping(mode="lowest")


def test_early_stopping_without_restore_keeps_the_last_weights(synthetic_bundle, tiny_mlp):
    snapshots = []

    class Snapshot(nf.Callback):
        def on_epoch_end(self, trainer, state):
            snapshots.append([p.detach().clone() for p in state.model.parameters()])

    stopper = nf.EarlyStopping("val_score", patience=2, restore_best=False)
    model = tiny_mlp()
    history = _trainer(synthetic_bundle, epochs=10).fit(
        model, callbacks=[Scores([-float(e) for e in range(10)]), Snapshot(), stopper]
    )
    assert len(history) == 3 and stopper.best_epoch == 0  # it did stop early
    assert all(torch.equal(a, b) for a, b in zip(snapshots[-1], model.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(snapshots[0], model.parameters(), strict=True))
