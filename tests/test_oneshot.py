"""Supernets, single-path training, the supernet evaluator and DARTS (tiny data and nets)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.errors import ConfigError, NasforgeError
from nasforge.evaluators.supernet import SupernetEvaluator, recalibrate_batch_norm
from nasforge.oneshot import Darts, MixedOp, SinglePathSampling, Supernet, train_supernet
from nasforge.space import Space
from nasforge.space.params import Choice, IntRange
from nasforge.train.callbacks import TrainState

SMALL = {"channels": 4, "cells_per_stage": 1}
CONV_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
)


def signals(n: int = 96, length: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, 1, length)`` signals whose class (of 3) is where their bump is."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = 0.3 * torch.randn(n, 1, length, generator=g)
    for i, label in enumerate(y.tolist()):
        start = label * (length // 3)
        x[i, 0, start : start + length // 3] += 1.0
    return x, y


@pytest.fixture(scope="module")
def space() -> Space:
    return nf.build("space", "nb201")


# ----------------------------------------------------------------------------- 1-D cell
def test_nb201_builds_a_1d_network_for_signals(space: Space) -> None:
    arch = space.from_key(CONV_CELL)
    net = space.build(arch, input_shape=(2, 24), num_classes=5, **SMALL)
    assert net(torch.randn(3, 2, 24)).shape == (3, 5)
    kinds = {type(m) for m in net.modules()}
    assert nn.Conv1d in kinds and nn.BatchNorm1d in kinds and nn.Conv2d not in kinds
    image = space.build(arch, input_shape=(2, 24, 24), num_classes=5, **SMALL)
    assert [n for n, _ in net.named_modules()] == [n for n, _ in image.named_modules()]
    with pytest.raises(ConfigError, match="input_shape"):
        space.build(arch, input_shape=(24,), **SMALL)


# ----------------------------------------------------------------------------- supernet
def _standalone_weights(supernet: Supernet, arch: nf.Arch) -> dict[str, torch.Tensor]:
    """The stand-alone network's state dict, taken from the arch's path in the supernet."""
    state = {}
    for key, value in supernet.network.state_dict().items():
        match = re.match(r"(cells\.\d+\.edges\.(\d)_(\d))\.candidates\.(\d+)\.(.*)", key)
        if match is None:
            state[key] = value
            continue
        prefix, to, frm, index, rest = match.groups()
        if supernet.choices[f"edge_{to}_{frm}"][int(index)] == arch[f"edge_{to}_{frm}"]:
            state[f"{prefix}.{rest}"] = value
    return state


def test_a_single_path_computes_the_standalone_network(space: Space) -> None:
    torch.manual_seed(0)
    supernet = Supernet.from_space(space, input_shape=(1, 16), num_classes=3, **SMALL)
    x = torch.randn(5, 1, 16)
    for key in (CONV_CELL, space.sample(seed=3).key, space.sample(seed=4).key):
        arch = supernet.set_arch(key)
        net = space.build(arch, input_shape=(1, 16), num_classes=3, **SMALL)
        net.load_state_dict(_standalone_weights(supernet, arch))
        supernet.eval(), net.eval()
        torch.testing.assert_close(supernet(x), net(x))


def test_set_weights_mixes_the_candidates(space: Space) -> None:
    torch.manual_seed(0)
    supernet = Supernet.from_space(space, input_shape=(1, 16), num_classes=3, **SMALL).eval()
    x = torch.randn(4, 1, 16)
    arch = supernet.set_arch(CONV_CELL)
    single = supernet(x)
    one_hot = {
        name: torch.tensor([float(v == arch[name]) for v in values])
        for name, values in supernet.choices.items()
    }
    supernet.set_weights(one_hot)  # a one-hot mixture is the single path
    torch.testing.assert_close(supernet(x), single)
    uniform = {name: torch.full((5,), 0.2) for name in supernet.choices}
    supernet.set_weights(uniform)
    assert not torch.allclose(supernet(x), single)
    with pytest.raises(ConfigError, match="edge_1_0"):
        supernet.set_weights({**uniform, "edge_1_0": torch.ones(3)})


def test_sample_arch_is_uniform_and_follows_torch_seed(space: Space) -> None:
    supernet = Supernet.from_space(space, input_shape=(1, 16), **SMALL)
    torch.manual_seed(1)
    first = [supernet.sample_arch().key for _ in range(5)]
    torch.manual_seed(1)
    assert [supernet.sample_arch().key for _ in range(5)] == first
    torch.manual_seed(2)
    ops = [supernet.sample_arch()["edge_2_1"] for _ in range(1000)]
    counts = {op: ops.count(op) for op in set(ops)}
    assert len(counts) == 5 and min(counts.values()) > 150


def test_a_mixed_op_without_a_path_says_what_to_do() -> None:
    op = MixedOp("act", {"relu": nn.ReLU(), "tanh": nn.Tanh()})
    with pytest.raises(NasforgeError, match="set_arch"):
        op(torch.zeros(1))


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0


OPS = {"conv": lambda: nn.Conv1d(1, 1, 3, padding=1), "zero": Zero}
ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class TwoChoiceSpace(Space):
    """A user's own cell space: a conv or nothing, then an activation (docs/oneshot.md)."""

    def __init__(self) -> None:
        super().__init__([Choice("op", list(OPS)), Choice("act", list(ACTS))], name="two")

    @staticmethod
    def _layers(op: nn.Module, act: nn.Module, input_shape, num_classes: int) -> nn.Module:
        return nn.Sequential(op, act, nn.Flatten(), nn.Linear(input_shape[-1], num_classes))

    def build(self, arch, *, input_shape, num_classes):  # type: ignore[override]
        return self._layers(OPS[arch["op"]](), ACTS[arch["act"]](), input_shape, num_classes)

    def supernet(self, *, input_shape, num_classes):  # type: ignore[override]
        op = MixedOp("op", {name: make() for name, make in OPS.items()})
        act = MixedOp("act", {name: make() for name, make in ACTS.items()})
        return self._layers(op, act, input_shape, num_classes)


def test_a_users_cell_space_gets_a_supernet() -> None:
    space = TwoChoiceSpace()
    supernet = Supernet.from_space(space, input_shape=(1, 16), num_classes=3)
    assert supernet.choices == {"op": ["conv", "zero"], "act": ["relu", "tanh"]}
    supernet.set_arch({"op": "conv", "act": "tanh"})
    assert supernet(torch.randn(2, 1, 16)).shape == (2, 3)
    evaluator = SupernetEvaluator(space, signals(), epochs=1, batch_size=32, seed=0)
    result = nf.search(space, evaluator, strategy="grid", budget=4, seed=0, progress=False)
    assert sorted(t.key for t in result.trials) == sorted(a.key for a in space.grid())


def test_a_supernet_must_cover_the_space() -> None:
    space = TwoChoiceSpace()
    only_op = MixedOp("op", {"conv": nn.Identity(), "zero": nn.Identity()})
    with pytest.raises(ConfigError, match="no MixedOp for parameter 'act'"):
        Supernet(space, nn.Sequential(only_op))
    wrong = MixedOp("act", {"relu": nn.ReLU(), "gelu": nn.GELU()})
    with pytest.raises(ConfigError, match=r"network\.act"):
        Supernet(space, nn.Sequential(only_op, wrong))
    ranged = Space([IntRange("depth", 1, 3)], name="ranged")
    with pytest.raises(ConfigError, match="unconditional Choice"):
        Supernet(ranged, nn.Identity())
    with pytest.raises(NotImplementedError, match=r"docs/oneshot\.md"):
        nf.build("space", "mlp").supernet()


# ----------------------------------------------------------------------------- training
def test_single_path_training_resumes_exactly(space: Space, tmp_path) -> None:
    data = signals()

    def fresh() -> Supernet:
        torch.manual_seed(0)
        return Supernet.from_space(space, input_shape=(1, 16), num_classes=3, **SMALL)

    whole = fresh()
    train_supernet(whole, data, epochs=2, batch_size=32, progress=False)
    path = tmp_path / "supernet.pt"
    resumed = fresh()
    train_supernet(resumed, data, epochs=1, batch_size=32, checkpoint=path, progress=False)
    history = train_supernet(
        resumed, data, epochs=2, batch_size=32, checkpoint=path, progress=False
    )
    assert len(history) == 2
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_single_path_sampling_changes_the_path_every_batch(space: Space) -> None:
    supernet = Supernet.from_space(space, input_shape=(1, 16), num_classes=3, **SMALL)
    seen: list[str] = []

    class Record(nf.Callback):
        def on_loss(self, trainer, state) -> None:
            seen.append(str([op.active for ops in supernet.mixed_ops.values() for op in ops]))

    nf.Trainer(signals(), epochs=1, batch_size=8, progress=False).fit(
        supernet, callbacks=[SinglePathSampling(), Record()]
    )
    assert len(seen) == 12 and len(set(seen)) > 8
    with pytest.raises(ConfigError, match="Supernet"):
        nf.Trainer(signals(), epochs=1, progress=False).fit(
            nn.Linear(16, 3), callbacks=[SinglePathSampling()]
        )


def test_recalibration_gives_the_exact_batch_statistics() -> None:
    model = nn.Sequential(nn.BatchNorm1d(2)).eval()
    batches = [torch.randn(8, 2) + 3.0, torch.randn(8, 2) - 1.0]
    recalibrate_batch_norm(model, batches)
    torch.testing.assert_close(model[0].running_mean, torch.cat(batches).mean(0))
    assert model[0].momentum == 0.1 and not model.training  # restored


# ----------------------------------------------------------------------------- evaluator
@pytest.fixture(scope="module")
def evaluator(space: Space) -> SupernetEvaluator:
    x, y = signals(150)
    data = ((x[:90], y[:90]), (x[90:120], y[90:120]), (x[120:], y[120:]))
    return SupernetEvaluator(
        space, data, epochs=2, batch_size=16, calibration_batches=2, build_options=SMALL
    )


def test_supernet_scores_are_repeatable_and_depend_on_the_arch(
    space: Space, evaluator: SupernetEvaluator
) -> None:
    archs = [space.from_key(CONV_CELL), *(space.sample(seed=s) for s in range(5))]
    first = [evaluator.evaluate(a) for a in archs]
    assert [evaluator.evaluate(a) for a in reversed(archs)] == first[::-1]
    assert set(first[0]) == set(evaluator.metrics)
    assert len({round(m["val_loss"], 6) for m in first}) > 3
    assert set(evaluator.test(archs[0])) == {"test_acc", "test_loss", "test_f1"}


def test_supernet_evaluator_plugs_into_search(space: Space, evaluator) -> None:
    result = nf.search(space, evaluator, strategy="evolution", budget=6, seed=0, progress=False)
    assert len(result.trials) == 6 and "test_acc" in result.best.metrics
    assert evaluator.identity()["build_options"] == SMALL


def test_supernet_evaluator_checks_its_options(space: Space) -> None:
    with pytest.raises(ConfigError, match=r"build_options\.input_shape"):
        SupernetEvaluator(space, signals(), build_options={"input_shape": (1, 16)})
    with pytest.raises(ConfigError, match="calibration_batches"):
        SupernetEvaluator(space, signals(), calibration_batches=0)
    with pytest.raises(ConfigError, match="space with a supernet"):
        SupernetEvaluator(nf.build("space", "mlp"), signals())
    with pytest.raises(ConfigError, match="checkpoint"):
        SupernetEvaluator(space, signals(), checkpoint=3)


# ----------------------------------------------------------------------------- DARTS
def _darts(space: Space, **options) -> Darts:
    return Darts(
        space, signals(), epochs=2, batch_size=16, build_options=SMALL, progress=False, **options
    )


def test_darts_derives_an_arch_from_its_weights(space: Space) -> None:
    result = _darts(space, guard=None).run()
    assert len(result.history) == 2 and result.history[-1]["arch"] == result.arch.key
    for name, weights in result.weights.items():
        assert sum(weights.values()) == pytest.approx(1.0)
        allowed = {v: w for v, w in weights.items() if v != "none"}
        assert result.arch[name] == max(allowed, key=allowed.__getitem__)
    again = _darts(space, guard=None).run()
    assert again.weights == result.weights  # seeded


def test_darts_learns_the_op_that_helps() -> None:
    space = TwoChoiceSpace()
    result = Darts(
        space,
        signals(),
        epochs=6,
        batch_size=16,
        arch_lr=0.05,
        guard=None,
        exclude=(),
        progress=False,
    ).run()
    assert result.weights["op"]["conv"] > 0.6  # the zero op leaves nothing to classify


def test_second_order_darts_matches_the_exact_unrolled_gradient() -> None:
    """The finite-difference Hessian product against autograd's exact one, on a model
    without batch norm."""
    from nasforge.oneshot.darts import _ArchitectureStep

    space = TwoChoiceSpace()
    darts = Darts(space, signals(), order=2, guard=None, exclude=(), epochs=1, progress=False)
    torch.manual_seed(0)
    supernet = Supernet.from_space(space, input_shape=(1, 16), num_classes=3)
    alphas = {n: torch.randn(2).requires_grad_() for n in supernet.choices}
    step = _ArchitectureStep(darts, supernet, alphas)
    (x_t, y_t), (x_v, y_v) = signals(16, seed=1), signals(16, seed=2)
    state = TrainState(model=supernet, optimizer=None, inputs=x_t, targets=y_t)  # type: ignore[arg-type]
    lr = 0.1
    approx = step._unrolled(state, x_v, y_v, lr=lr)

    params = [p for p in supernet.parameters()]
    supernet.set_weights(step.softmax())
    grads = torch.autograd.grad(
        nn.functional.cross_entropy(supernet(x_t), y_t), params, create_graph=True
    )
    unrolled = [p - lr * g for p, g in zip(params, grads, strict=True)]
    names = [n for n, _ in supernet.named_parameters()]
    supernet.set_weights(step.softmax())
    out = torch.func.functional_call(supernet, dict(zip(names, unrolled, strict=True)), (x_v,))
    exact = torch.autograd.grad(nn.functional.cross_entropy(out, y_v), list(alphas.values()))
    for a, e in zip(approx, exact, strict=True):
        torch.testing.assert_close(a, e, atol=1e-4, rtol=1e-2)


def test_beta_guard_keeps_the_weights_flatter(space: Space) -> None:
    plain = _darts(space, guard=None, arch_lr=0.05).run()
    guarded = _darts(space, guard="beta", guard_strength=50.0, arch_lr=0.05).run()
    assert guarded.history[-1]["arch_entropy"] > plain.history[-1]["arch_entropy"]


def test_aux_skip_guard_decays_linearly(space: Space) -> None:
    result = _darts(space, guard="aux_skip", guard_strength=0.8).run()
    assert [h["aux_skip"] for h in result.history] == pytest.approx([0.8, 0.4])
    assert {op.bypass for ops in result.supernet.mixed_ops.values() for op in ops} == {0.0}


def test_darts_checks_its_options(space: Space) -> None:
    with pytest.raises(ConfigError, match="guard"):
        _darts(space, guard="gumbel")
    with pytest.raises(ConfigError, match="order"):
        _darts(space, order=3)
    with pytest.raises(ConfigError, match="exclude"):
        _darts(space, exclude=list(nf.build("space", "nb201")["edge_1_0"].choices)).run()


# ----------------------------------------------------------------------------- retraining
def test_retrain_trains_the_arch_standalone(space: Space) -> None:
    x, y = signals(150)
    data = ((x[:90], y[:90]), (x[90:120], y[90:120]), (x[120:], y[120:]))
    model, metrics = nf.retrain(
        space, CONV_CELL, data, build_options=SMALL, epochs=6, batch_size=16, lr=1e-2, progress=True
    )
    assert sum(p.numel() for p in model.parameters()) == metrics["params"]
    assert not model.training and isinstance(model.cells[0].edges["1_0"][1], nn.Conv1d)
    with torch.no_grad():
        accuracy = (model(x[120:]).argmax(1) == y[120:]).float().mean().item()
    assert accuracy == pytest.approx(metrics["test_acc"], abs=1e-6) and accuracy > 0.6
    assert {"val_acc", "val_loss", "test_loss", "train_seconds"} <= set(metrics)


def test_aux_skip_refuses_ops_that_change_the_shape() -> None:
    op = MixedOp("width", {"narrow": nn.Linear(4, 2), "wide": nn.Linear(4, 3)})
    op.active, op.bypass = 0, 0.5
    with pytest.raises(ConfigError, match="guard='beta'"):
        op(torch.zeros(1, 4))
