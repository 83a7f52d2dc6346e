"""Zero-cost proxies: what each scores, determinism, data checks, rank() and warm starts."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.evaluators import NASWOT, SNIP, Synflow, ZeroCostProxy

SMALL = {"channels": 4, "cells_per_stage": 1}
SHAPE = (3, 8, 8)


def _cell(op: str) -> str:
    """The NB201 cell string with ``op`` on every edge."""
    return f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"


NONE, SKIP, CONV = _cell("none"), _cell("skip_connect"), _cell("nor_conv_3x3")


@pytest.fixture(scope="module")
def space() -> nf.Space:
    return nf.build("space", "nb201")


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(48, *SHAPE, generator=g), torch.randint(0, 10, (48,), generator=g)


def _proxy(name: str, space: nf.Space, data=None, **options) -> ZeroCostProxy:
    if name == "synflow":
        options.setdefault("input_shape", SHAPE)
    else:
        options.setdefault("data", data)
        options.setdefault("batch_size", 16)
    return nf.build("evaluator", name, space=space, build_options=SMALL, **options)


PROXIES = ("synflow", "naswot", "snip")


def test_the_proxies_are_registered_and_exported() -> None:
    assert {"synflow", "naswot", "snip"} <= set(nf.available("evaluator"))
    assert nf.get("evaluator", "synflow") is Synflow is nf.Synflow
    assert nf.get("evaluator", "naswot") is NASWOT is nf.NASWOT
    assert nf.get("evaluator", "snip") is SNIP is nf.SNIP
    assert nf.ZeroCostProxy is ZeroCostProxy
    assert all(issubclass(c, ZeroCostProxy) for c in (Synflow, NASWOT, SNIP))


@pytest.mark.parametrize("name", PROXIES)
def test_conv_cell_beats_skip_cell_beats_none_cell(name, space, data) -> None:
    """A cell with convolutions scores above a cell of skips, which scores above the cell
    whose output is constant zero; that one gets 0, the lowest score, not NaN or -inf."""
    proxy = _proxy(name, space, data)
    conv, skip, none = (proxy.evaluate(space.from_key(k))[name] for k in (CONV, SKIP, NONE))
    assert none == 0.0
    assert conv > skip > none, (conv, skip, none)


@pytest.mark.parametrize("name", PROXIES)
def test_scores_are_finite_non_negative_and_declared(name, space, data) -> None:
    proxy = _proxy(name, space, data)
    for seed in range(4):
        metrics = proxy.evaluate(space.sample(seed))
        assert sorted(metrics) == sorted(proxy.metrics) == sorted([name, "params"])
        assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
        assert metrics[name] >= 0 and metrics["params"] > 0


@pytest.mark.parametrize("name", PROXIES)
def test_same_seed_and_arch_same_score(name, space, data) -> None:
    """Two evaluators with the same seed agree exactly (fixed initialisation per arch), and
    so do two calls of one; another seed initialises otherwise."""
    arch = space.from_key(CONV)
    first = _proxy(name, space, data).evaluate(arch)
    second = _proxy(name, space, data)
    assert second.evaluate(arch) == first
    assert second.evaluate(space.from_key(CONV)) == first
    other = _proxy(name, space, data, seed=1).evaluate(arch)
    assert other[name] != first[name]
    copy = pickle.loads(pickle.dumps(second))
    copy._scores.clear()
    assert copy.evaluate(arch) == first


def test_scoring_leaves_the_global_random_state_alone(space) -> None:
    proxy = _proxy("synflow", space)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    proxy.evaluate(space.sample(5))
    assert torch.equal(torch.rand(3), expected)


def test_synflow_needs_no_data_but_a_shape(space) -> None:
    with pytest.raises(ConfigError) as err:
        Synflow(space, build_options=SMALL)
    assert err.value.field == "input_shape"


@pytest.mark.parametrize("name", ["naswot", "snip"])
def test_naswot_and_snip_need_data_and_say_so(name, space) -> None:
    with pytest.raises(ConfigError, match="synflow") as err:
        nf.build("evaluator", name, space=space, input_shape=SHAPE, build_options=SMALL)
    assert err.value.field == "data"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"input_shape": (3, 0, 8)}, "input_shape"),
        ({"input_shape": "3x8x8"}, "input_shape"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"num_classes": 0}, "num_classes"),
        ({"build_options": ["channels", 4]}, "build_options"),
        ({"build_options": {"num_classes": 3}}, "build_options"),
        ({"build_options": {"channels": 0}}, "channels"),
    ],
)
def test_bad_options_name_the_field(space, options, field) -> None:
    options = {"input_shape": SHAPE, "build_options": SMALL, **options}
    with pytest.raises(ConfigError) as err:
        Synflow(space, **options)
    assert err.value.field == field


def test_data_decides_shape_and_classes(space, data) -> None:
    x, y = data
    proxy = NASWOT(space, data=(x.numpy(), y.numpy()), batch_size=8, build_options=SMALL)
    assert proxy.input_shape == SHAPE and proxy.num_classes == int(y.max()) + 1
    assert proxy.inputs.shape == (8, *SHAPE) and proxy.targets.shape == (8,)
    with pytest.raises(ConfigError) as err:
        NASWOT(space, data=data, input_shape=(3, 4, 4), build_options=SMALL)
    assert err.value.field == "input_shape"
    with pytest.raises(ConfigError) as err:
        SNIP(space, data=data, num_classes=2, build_options=SMALL)
    assert err.value.field == "num_classes"
    with pytest.raises(ConfigError) as err:
        SNIP(space, data=42, build_options=SMALL)
    assert err.value.field == "data"
    synflow = Synflow(space, data=data, build_options=SMALL)  # takes the shape, not a batch
    assert synflow.input_shape == SHAPE and synflow.inputs is None
    assert "data_sha256" not in synflow.identity()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=5)
    from_loaders = SNIP(space, data=(loader, loader), batch_size=12, build_options=SMALL)
    assert from_loaders.inputs.shape == (12, *SHAPE)
    assert math.isfinite(from_loaders.evaluate(space.from_key(CONV))["snip"])


def test_identity_records_what_the_scores_depend_on(space, data) -> None:
    a = _proxy("naswot", space, data).identity()
    b = _proxy("naswot", space, (data[0] + 1, data[1])).identity()
    assert a["evaluator"] == "naswot" and a["build_options"] == SMALL
    assert a["data_sha256"] != b["data_sha256"]
    assert "data_sha256" not in _proxy("synflow", space).identity()


@pytest.mark.parametrize("name", PROXIES)
def test_other_spaces_score_too(name, data) -> None:
    """Layer norm and non-ReLU activations (bypassed, resp. hooked) still give a score."""
    mlp = nf.build("space", "mlp", max_depth=2, widths=[32, 64], norms=["layer", "batch"])
    x, y = data
    flat = (x[:, 0, :2].reshape(len(x), 16), y)  # 16 features
    proxy = nf.build(
        "evaluator",
        name,
        space=mlp,
        **({"input_shape": (16,)} if name == "synflow" else {"data": flat, "batch_size": 8}),
    )
    for seed in range(3):
        arch = mlp.sample(seed)
        score = proxy.evaluate(arch)[name]
        assert math.isfinite(score) and score > 0, (arch, score)


def test_rank_sorts_distinct_archs_best_first(space) -> None:
    proxy = _proxy("synflow", space)
    ranked = proxy.rank(pool=12, seed=3, progress=False)
    assert len(ranked) == 12
    canonical = {space.canonical(a).key for a in ranked}
    assert len(canonical) == 12
    scores = [proxy.evaluate(a)["synflow"] for a in ranked]
    assert scores == sorted(scores, reverse=True)
    assert [a.key for a in proxy.rank(pool=12, seed=3)] == [a.key for a in ranked]
    assert [a.key for a in proxy.rank(pool=12, seed=4)] != [a.key for a in ranked]


def test_rank_given_archs_and_keys(space) -> None:
    proxy = _proxy("synflow", space)
    ranked = proxy.rank([NONE, space.from_key(SKIP), space.from_key(CONV).to_dict()])
    assert [a.key for a in ranked] == [CONV, SKIP, NONE]
    with pytest.raises(ConfigError) as err:
        proxy.rank(CONV)
    assert err.value.field == "archs"
    with pytest.raises(ConfigError):
        proxy.rank(pool=0)


def test_rank_stops_at_the_distinct_archs_of_a_small_space() -> None:
    tiny = nf.build("space", "mlp", max_depth=1, widths=[8], activations=["relu"], max_dropout=0)
    proxy = Synflow(tiny, input_shape=(4,))
    ranked = proxy.rank(pool=50)
    assert len(ranked) == tiny.distinct_size == len({a.key for a in ranked})


@pytest.mark.parametrize("strategy", ["local", "evolution", "random"])
def test_warm_start_through_search_evaluates_the_ranked_archs_first(space, strategy) -> None:
    proxy = _proxy("synflow", space)
    best = proxy.rank(pool=20, seed=0)[:3]
    result = nf.search(
        space,
        proxy,
        strategy=strategy,
        budget=6,
        seed=0,
        objective="synflow",
        warm_start=best,
        progress=False,
    )
    keys = [t.key for t in result.trials]
    # local search draws only its first start at random, later ones perturb the best so far
    first = 1 if strategy == "local" else 3
    assert keys[:first] == [a.key for a in best[:first]]
    assert len(set(keys)) == 6


def test_warm_start_on_a_strategy(space) -> None:
    proxy = _proxy("synflow", space)
    best = proxy.rank(pool=10, seed=1)[:2]
    strategy = nf.build("strategy", "evolution", space=space, seed=0)
    strategy.warm_start(best)
    assert [strategy.ask().key for _ in range(2)] == [a.key for a in best]


def test_scores_rank_like_accuracy_on_a_handful_of_nb201_cells(space) -> None:
    """Synflow, even on a tiny network, ranks cells with more (and larger) convolutions
    above cells with fewer, as trained accuracy on NAS-Bench-201 broadly does."""
    proxy = _proxy("synflow", space)
    keys = [
        NONE,
        "|avg_pool_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|none~1|avg_pool_3x3~2|",
        "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|",
        CONV,
    ]
    scores = [proxy.evaluate(space.from_key(k))["synflow"] for k in keys]
    assert scores == sorted(scores), scores
    assert np.all(np.diff(scores) > 0)


def _two_layer(bias: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 6, bias=bias),
        torch.nn.BatchNorm1d(6),
        torch.nn.ReLU(),
        torch.nn.Linear(6, 3, bias=bias),
    )


def test_synflow_is_the_synaptic_flow_of_the_linearised_network() -> None:
    """Without biases the linearised network is multilinear in its layers, so each layer
    contributes ``R`` (Euler's theorem) and the score is layers x ``R``, where ``R`` is
    the sum of ``|W2| |W1| 1`` (batch norm bypassed, every activation positive)."""
    mlp = nf.build("space", "mlp", max_depth=1, widths=[6], max_dropout=0)
    proxy = Synflow(mlp, input_shape=(4,), num_classes=3)
    model = _two_layer()
    w1, w2 = (m.weight.detach().abs().double() for m in (model[0], model[3]))
    flow = float((w2 @ w1 @ torch.ones(4, dtype=torch.float64)).sum())
    assert proxy.score(model) == pytest.approx(2 * flow, rel=1e-12)


def test_naswot_is_the_log_determinant_of_the_code_kernel(data) -> None:
    mlp = nf.build("space", "mlp", max_depth=1, widths=[6], max_dropout=0)
    x = data[0][:, 0, 0, :4]
    proxy = NASWOT(mlp, data=(x, data[1]), batch_size=5)
    model = _two_layer(bias=True).train()
    pre = model[1](model[0](proxy.inputs)).detach()  # what the ReLU sees
    codes = (pre > 0).double()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    sign, logdet = torch.linalg.slogdet(kernel)
    expected = float(logdet) if sign > 0 else 0.0
    assert proxy.score(model) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_snip_is_the_connection_sensitivity_on_the_batch(data) -> None:
    mlp = nf.build("space", "mlp", max_depth=1, widths=[6], max_dropout=0)
    x = data[0][:, 0, 0, :4]
    proxy = SNIP(mlp, data=(x, data[1] % 3), batch_size=12)
    model = _two_layer(bias=True).train()
    loss = torch.nn.functional.cross_entropy(model(proxy.inputs), proxy.targets)
    weights = [model[0].weight, model[3].weight]
    grads = torch.autograd.grad(loss, weights)
    expected = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads, strict=True))
    assert proxy.score(_two_layer(bias=True)) == pytest.approx(expected, rel=1e-6)
