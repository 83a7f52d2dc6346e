import copy

import numpy as np
import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.compress.distill import (
    DistillationCallback,
    Distiller,
    HintAdapter,
    TeacherEnsemble,
    hard_kd_loss,
    soft_kd_loss,
)
from nasforge.train.augment import AugmentedLoader, GaussianNoise


def _trainer(bundle, **kwargs):
    options = {"epochs": 2, "batch_size": 32, "lr": 1e-2, "seed": 0, "progress": False}
    options.update(kwargs)
    return nf.Trainer(bundle, **options)


def _teacher(in_features=6, num_classes=3, dropout=0.5):
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Linear(in_features, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(32, num_classes),
    )


class _Recorder(nn.Module):
    """Wraps a model and records, for every forward, its mode and the inputs it saw."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled(), x.detach().clone()))
        return self.model(x)


def test_soft_kd_loss_matches_hand_computation():
    s = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    T = 3.0

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p_s, p_t = softmax(s.numpy() / T), softmax(t.numpy() / T)
    expected = T**2 * np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1))
    assert float(soft_kd_loss(s, t, temperature=T)) == pytest.approx(expected, rel=1e-5)
    assert float(soft_kd_loss(t, t, temperature=T)) == pytest.approx(0.0, abs=1e-6)


def test_soft_kd_gradient_scale_is_independent_of_temperature():
    # With the T^2 factor the gradient magnitude stays comparable as T grows (Hinton 2.1):
    # for large T it tends to (s - t) / N after centring, whatever T is.
    torch.manual_seed(0)
    t = torch.randn(4, 5)
    norms = []
    for T in (5.0, 50.0):
        s = torch.randn(4, 5, generator=torch.Generator().manual_seed(1)).requires_grad_()
        soft_kd_loss(s, t, temperature=T).backward()
        norms.append(s.grad.norm().item())
    assert norms[0] == pytest.approx(norms[1], rel=0.1)


def test_hard_kd_loss_is_cross_entropy_on_teacher_argmax():
    s = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = torch.tensor([[2.0, 0.0, 1.0], [1.0, 5.0, 1.0]])
    expected = -(torch.log_softmax(s, 1)[0, 0] + torch.log_softmax(s, 1)[1, 1]) / 2
    assert float(hard_kd_loss(s, t)) == pytest.approx(float(expected))


def test_teacher_runs_in_eval_without_grads_and_is_left_untouched(synthetic_bundle, tiny_mlp):
    teacher = _Recorder(_teacher())
    flags = [p.requires_grad for p in teacher.parameters()]
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = tiny_mlp()
    callback = DistillationCallback(teacher=teacher, temperature=2.0, alpha=0.5)
    _trainer(synthetic_bundle).fit(student, callbacks=[callback])
    assert teacher.calls, "the teacher never ran"
    assert all(not training and not grad for training, grad, _ in teacher.calls)
    assert all(p.grad is None for p in teacher.parameters())
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats included
    assert [p.requires_grad for p in teacher.parameters()] == flags


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_loss_is_the_weighted_kd_objective(synthetic_bundle, tiny_mlp, mode):
    teacher = _teacher().eval()
    seen = []

    class Check(nf.Callback):
        def on_loss(self, trainer, state):  # runs after the distillation callback
            with torch.no_grad():
                t = teacher(state.inputs)
                ce = nn.functional.cross_entropy(state.outputs, state.targets)
                if mode == "soft":
                    kd = soft_kd_loss(state.outputs, t, temperature=4.0)
                else:
                    kd = nn.functional.cross_entropy(state.outputs, t.argmax(1))
            seen.append((float(state.loss.detach()), float(0.3 * ce + 0.7 * kd)))

    kd = DistillationCallback(teacher=teacher, mode=mode, temperature=4.0, alpha=0.7)
    _trainer(synthetic_bundle, epochs=1).fit(tiny_mlp(), callbacks=[kd, Check()])
    assert seen
    for got, expected in seen:
        assert got == pytest.approx(expected, rel=1e-5)


def test_teacher_sees_the_same_augmented_view_as_the_student(synthetic_bundle, tiny_mlp):
    teacher = _Recorder(_teacher())
    student = _Recorder(tiny_mlp())
    distiller = Distiller(teacher=teacher, alpha=1.0, augment=GaussianNoise(0.3), epochs=2)
    distiller.apply(student, _trainer(synthetic_bundle))
    student_train = [x for training, _, x in student.calls if training]
    assert len(student_train) == len(teacher.calls)
    for (_, _, t_in), s_in in zip(teacher.calls, student_train, strict=True):
        assert torch.equal(t_in, s_in)
    clean = synthetic_bundle.train.tensors[0]
    first_row = teacher.calls[0][2][0]
    assert not (clean == first_row).all(dim=1).any()  # augmented, not a raw sample
    # a new view every epoch: the same samples never come back identical
    views = {tuple(x.flatten().tolist()[:3]) for _, _, x in teacher.calls}
    assert len(views) == len(teacher.calls)


def test_cached_teacher_logits_equal_fresh_ones(synthetic_bundle, tiny_mlp):
    teacher = _Recorder(_teacher())
    callback = DistillationCallback(teacher=teacher, cache_teacher=True)
    _trainer(synthetic_bundle, epochs=3).fit(tiny_mlp(), callbacks=[callback])
    x_train = synthetic_bundle.train.tensors[0]
    assert len(callback.cache) == len(x_train)
    # the teacher labelled every sample exactly once (first epoch), then the cache served
    assert sum(len(x) for _, _, x in teacher.calls) == len(x_train)
    assert callback.cache_hits == 2 * len(x_train)
    teacher.eval()
    with torch.no_grad():
        fresh = teacher(x_train)
    cached = torch.stack([callback.cache[row.numpy().tobytes()] for row in x_train])
    torch.testing.assert_close(cached, fresh)


def test_cache_refuses_a_non_deterministic_loader(synthetic_bundle, tiny_mlp):
    x, y = synthetic_bundle.train.tensors
    loader = AugmentedLoader(x, y, transform=GaussianNoise(0.1), batch_size=32)
    callback = DistillationCallback(teacher=_teacher(), cache_teacher=True)
    with pytest.raises(nf.ConfigError, match="not deterministic") as info:
        _trainer(synthetic_bundle).fit(tiny_mlp(), loader, callbacks=[callback])
    assert info.value.field == "cache_teacher"
    with pytest.raises(nf.ConfigError, match="augment") as info:
        Distiller(teacher=_teacher(), cache_teacher=True, augment=GaussianNoise(0.1))
    assert info.value.field == "cache_teacher"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"temperature": 0}, "temperature"),
        ({"alpha": 1.5}, "alpha"),
        ({"mode": "medium"}, "mode"),
        ({"hints": "0"}, "hints"),
        ({"hints": [("0", "nope")]}, "hints"),
        ({"hint_weight": -1}, "hint_weight"),
        ({"epochs": 0}, "epochs"),
        ({"augment": "shift"}, "augment"),
        ({"hints": [("0", "0")], "cache_teacher": True}, "cache_teacher"),
    ],
)
def test_invalid_options_name_the_field(options, field):
    with pytest.raises(nf.ConfigError) as info:
        nf.build("compressor", "distill", teacher=_teacher(), **options)
    assert info.value.field == field


def test_unknown_hint_layer_suggests_close_names(synthetic_bundle, tiny_mlp):
    with pytest.raises(nf.ConfigError, match="Did you mean '1'"):
        Distiller(teacher=_teacher(), hints=[("0", "11")])
    distiller = Distiller(teacher=_teacher(), hints=[("layer9", "1")])
    with pytest.raises(nf.ConfigError, match="student has no layer 'layer9'"):
        distiller.apply(tiny_mlp(), _trainer(synthetic_bundle))


def test_teacher_equal_to_student_is_refused(synthetic_bundle, tiny_mlp):
    model = tiny_mlp()
    with pytest.raises(nf.ConfigError, match="same module"):
        Distiller(teacher=model).apply(model, _trainer(synthetic_bundle))


def test_hint_adapter_shapes():
    conv = HintAdapter(torch.Size([8, 10]), torch.Size([16, 20]))
    s, t = conv(torch.randn(2, 8, 10), torch.randn(2, 16, 20))
    assert s.shape == t.shape == (2, 16, 10)
    assert isinstance(conv.project, nn.Conv1d)
    linear = HintAdapter(torch.Size([8]), torch.Size([32]))
    assert isinstance(linear.project, nn.Linear)
    same = HintAdapter(torch.Size([4, 5, 5]), torch.Size([4, 5, 5]))
    assert not list(same.parameters())
    with pytest.raises(nf.ConfigError, match="same rank"):
        HintAdapter(torch.Size([8]), torch.Size([8, 4]))


def test_feature_hints_train_the_adapter_and_pull_features_together(synthetic_bundle, tiny_mlp):
    teacher = _teacher().eval()
    student = tiny_mlp()  # student layer "1" (ReLU, 16 wide) -> teacher layer "2" (ReLU, 32)
    initial_student = copy.deepcopy(student)
    kd = DistillationCallback(teacher=teacher, hints=[("1", "2")], alpha=0.0)
    initial_adapter = []

    class Check(nf.Callback):
        def on_loss(self, trainer, state):  # after the distillation callback built adapters
            groups = state.optimizer.param_groups
            if state.global_step == 0:
                initial_adapter.append(copy.deepcopy(kd.adapters[0]))
                assert any(p is kd.adapters[0].project.weight for p in groups[-1]["params"])
            assert groups[-1]["lr"] == groups[0]["lr"]  # the adapter follows the schedule

    _trainer(synthetic_bundle, epochs=6, lr_schedule="cosine").fit(student, callbacks=[kd, Check()])
    adapter = kd.adapters[0]
    assert isinstance(adapter.project, nn.Linear)
    assert adapter.project.out_features == 32
    assert not torch.equal(initial_adapter[0].project.weight, adapter.project.weight)
    x = synthetic_bundle.val.tensors[0]

    def hint_error(model, adapter):
        with torch.no_grad():
            return float(nn.functional.mse_loss(adapter.project(model[:2](x)), teacher[:3](x)))

    before = hint_error(initial_student, initial_adapter[0])
    assert hint_error(student, adapter) < 0.5 * before
    assert not kd._handles  # hooks removed after the fit


def test_distillation_moves_the_student_towards_the_teacher(synthetic_bundle, tiny_mlp):
    teacher = _teacher(dropout=0.0)
    _trainer(synthetic_bundle, epochs=5).fit(teacher)
    teacher.eval()
    x = synthetic_bundle.test.tensors[0]
    student = tiny_mlp()

    def gap():
        with torch.no_grad():
            return float(soft_kd_loss(student(x), teacher(x), temperature=1.0))

    before = gap()
    distiller = nf.build("compressor", "distill", teacher=teacher, alpha=1.0, temperature=1.0)
    out = distiller.apply(student, _trainer(synthetic_bundle, epochs=5))
    assert out is student
    assert gap() < 0.5 * before
    assert "distill" in nf.available("compressor")


def test_teacher_ensemble_averages_probabilities_and_distils(synthetic_bundle, tiny_mlp):
    members = [_teacher(dropout=0.0), tiny_mlp()]
    ensemble = TeacherEnsemble(members).eval()
    x = synthetic_bundle.test.tensors[0]
    with torch.no_grad():
        expected = sum(m.eval()(x).softmax(dim=1) for m in members) / 2
        assert torch.allclose(ensemble(x).softmax(dim=1), expected, atol=1e-6)
    before = [p.clone() for p in ensemble.parameters()]
    callback = DistillationCallback(teacher=ensemble, temperature=2.0, alpha=1.0)
    _trainer(synthetic_bundle).fit(tiny_mlp(), callbacks=[callback])
    assert all(torch.equal(a, b) for a, b in zip(before, ensemble.parameters(), strict=True))
    assert all(p.requires_grad for p in ensemble.parameters())  # unfrozen after the fit
    with pytest.raises(nf.ConfigError):
        TeacherEnsemble([])


def test_a_transfer_set_is_labelled_by_the_teacher_and_trained_on(synthetic_bundle, tiny_mlp):
    teacher = _Recorder(_teacher(dropout=0.0))
    x = synthetic_bundle.train.tensors[0]
    unlabeled = torch.randn(100, 6)
    seen = []

    class Count(nf.Callback):
        def on_batch_begin(self, trainer, state):
            seen.append((state.inputs.clone(), state.targets.clone()))

    trainer = _trainer(synthetic_bundle, epochs=1, callbacks=[Count()])
    distiller = Distiller(teacher=teacher, alpha=0.5, unlabeled=unlabeled.numpy())
    distiller.apply(tiny_mlp(), trainer)
    inputs = torch.cat([i for i, _ in seen])
    targets = torch.cat([t for _, t in seen])
    assert len(inputs) == len(x) + 100  # one epoch covers both sets
    training, grad, labelled = teacher.calls[0]  # first, the transfer set is labelled
    assert not training and not grad and torch.equal(labelled, unlabeled)
    with torch.no_grad():
        pseudo = teacher.model(unlabeled).argmax(1)
    order = {tuple(row.tolist()): i for i, row in enumerate(inputs)}
    for row, label in zip(unlabeled, pseudo, strict=True):  # their targets: the teacher's
        assert targets[order[tuple(row.tolist())]] == label
    assert "unlabeled=100" in repr(distiller)


def test_a_transfer_set_teaches_what_few_labels_cannot(tiny_mlp):
    data = nf.load_dataset(
        "synthetic", num_samples=600, input_shape=(6,), num_classes=8, noise=1.0, seed=2
    )
    torch.manual_seed(1)
    teacher = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8))
    _trainer(data, epochs=20).fit(teacher)
    teacher.eval()
    x, y = data.train.tensors
    train = torch.utils.data.TensorDataset(x[:16], y[:16])  # 2 labels per class
    few = nf.DataBundle(
        name="few", train=train, val=data.val, test=data.test, num_classes=8, input_shape=(6,)
    )
    alone, distilled = tiny_mlp(num_classes=8), tiny_mlp(num_classes=8)
    _trainer(few, epochs=30).fit(alone)
    Distiller(teacher=teacher, alpha=1.0, temperature=1.0, unlabeled=x[16:]).apply(
        distilled, _trainer(few, epochs=30)
    )
    accuracy = {
        name: _trainer(few).evaluate(model, data.test)["accuracy"]
        for name, model in (("teacher", teacher), ("alone", alone), ("kd", distilled))
    }  # measured: teacher 0.66, alone 0.33, distilled with the transfer set 0.67
    assert accuracy["kd"] > accuracy["alone"] + 0.2, accuracy
    assert accuracy["kd"] > accuracy["teacher"] - 0.05, accuracy


@pytest.mark.parametrize(
    ("unlabeled", "message"),
    [
        ("signals", "unlabeled must be inputs without labels"),
        (torch.zeros(0, 6), "a non-empty float array"),
        (torch.zeros(5, dtype=torch.long), "a non-empty float array"),
    ],
)
def test_a_bad_transfer_set_is_refused_at_construction(unlabeled, message):
    with pytest.raises(nf.ConfigError, match=message) as info:
        Distiller(teacher=_teacher(), unlabeled=unlabeled)
    assert info.value.field == "unlabeled"


def test_a_transfer_set_of_the_wrong_shape_is_refused(synthetic_bundle, tiny_mlp):
    distiller = Distiller(teacher=_teacher(), unlabeled=torch.zeros(10, 7))
    with pytest.raises(nf.ConfigError, match=r"shaped like the training inputs, \(6,\)"):
        distiller.apply(tiny_mlp(), _trainer(synthetic_bundle))
    loader = torch.utils.data.DataLoader(synthetic_bundle.train)
    trainer = nf.Trainer(loader, epochs=1, progress=False)
    with pytest.raises(nf.ConfigError, match="in-memory data to add a transfer set to"):
        Distiller(teacher=_teacher(), unlabeled=torch.zeros(10, 6)).apply(tiny_mlp(), trainer)
