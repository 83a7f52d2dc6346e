"""REINFORCE (``reinforce``): policy gradient with an EMA baseline over any space."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.space import Choice, Fixed, FloatRange, IntRange, Space
from nasforge.space.builtin import NB201_OPS
from nasforge.strategy import Reinforce
from nasforge.testing import synthetic_score

TARGET = NB201_OPS.index("nor_conv_3x3")


def conv3x3_count(arch) -> float:
    return float(sum(op == "nor_conv_3x3" for op in arch.values()))


def drive(strategy, n: int, score=None, *, fail_every: int = 0) -> list:
    score = score or (lambda a: synthetic_score(strategy.space, a))
    asked = []
    for i in range(n):
        arch = strategy.ask()
        asked.append(arch)
        failed = fail_every and i % fail_every == fail_every - 1
        strategy.tell(arch, None if failed else score(arch))
    return asked


def ranges_space() -> Space:
    return Space(
        [
            FloatRange("x", 0.0, 1.0),
            FloatRange("lr", 1e-4, 1e-1, log=True),
            IntRange("wide", 1, 1000, log=True),
            IntRange("small", 0, 12, step=3),
            Fixed("tag", "v1"),
            Choice("extra", ["a", "b"], when={"tag": ["v1"]}),
        ],
        name="ranges",
    )


def test_is_registered_and_exported():
    assert "reinforce" in nf.available("strategy")
    strategy = nf.build("strategy", "reinforce", space=nf.build("space", "nb201"))
    assert isinstance(strategy, Reinforce)
    assert strategy.options == {"lr": 0.3, "baseline_momentum": 0.9, "bins": 10}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_policy_concentrates_on_the_best_op(seed):
    strategy = Reinforce(nf.build("space", "nb201"), seed=seed)
    drive(strategy, 150, conv3x3_count)
    target = [p[TARGET] for p in strategy.probabilities().values()]
    # uniform would be 0.2 per op; measured about 0.9 for every edge
    assert min(target) > 0.5, target


def test_learning_beats_its_own_start():
    strategy = Reinforce(nf.build("space", "nb201"), seed=3)
    scores = [conv3x3_count(a) for a in drive(strategy, 120, conv3x3_count)]
    # random cells average 1.2 target ops; measured 1.8 in the first 10 asks, 3.9 in the
    # last 40 (about 2.9 when a collapsed policy falls back to random archs at once)
    assert np.mean(scores[-40:]) > max(3.5, np.mean(scores[:10]) + 1.5)


def test_baseline_is_a_bias_corrected_moving_average_of_the_scores():
    space = nf.build("space", "nb201")
    strategy = Reinforce(space, seed=0, baseline_momentum=0.8)
    assert strategy.baseline is None
    scores = [90.0, 80.0, 85.0, 70.0]
    for i, score in enumerate(scores):
        strategy.tell(space.sample(i), score)
    strategy.tell(space.sample(9), None)  # a failure leaves it unchanged
    weights = [0.2 * 0.8 ** (len(scores) - 1 - i) for i in range(len(scores))]
    expected = sum(w * s for w, s in zip(weights, scores, strict=True)) / sum(weights)
    assert strategy.baseline == pytest.approx(expected)
    assert strategy.baseline != pytest.approx(np.mean(scores))
    last = Reinforce(space, seed=0, baseline_momentum=0.0)
    for i, score in enumerate(scores):
        last.tell(space.sample(i), score)
    assert last.baseline == pytest.approx(scores[-1])


def test_advantage_is_measured_against_the_baseline():
    space = nf.build("space", "nb201")
    good, bad = space.sample(1), space.sample(2)
    strategy = Reinforce(space, seed=0)
    strategy.tell(space.sample(0), 50.0)  # only starts the baseline
    assert all(np.allclose(p, 0.2) for p in strategy.probabilities().values())
    strategy.tell(good, 60.0)  # above the baseline: its ops become likelier
    probs = strategy.probabilities()
    for name, p in probs.items():
        assert p[NB201_OPS.index(good[name])] > 0.2
    strategy.tell(bad, 10.0)  # below: its ops become less likely than before
    for name, p in strategy.probabilities().items():
        if bad[name] != good[name]:
            assert p[NB201_OPS.index(bad[name])] < probs[name][NB201_OPS.index(bad[name])]


@pytest.mark.parametrize(("scale", "shift"), [(0.01, 0.0), (100.0, -37.0), (1.0, -1000.0)])
def test_update_is_scale_free(scale, shift):
    space = nf.build("space", "nb201")
    archs = [space.sample(i) for i in range(40)]
    plain, scaled = Reinforce(space, seed=0), Reinforce(space, seed=0)
    for arch in archs:
        plain.tell(arch, synthetic_score(space, arch))
        scaled.tell(arch, scale * synthetic_score(space, arch) + shift)
    for name, p in plain.probabilities().items():
        assert np.allclose(p, scaled.probabilities()[name], atol=1e-6)
    assert not np.allclose(plain.probabilities()["edge_1_0"], 0.2)


def test_equal_scores_do_not_move_the_policy():
    space = nf.build("space", "nb201")
    strategy = Reinforce(space, seed=0)
    for i in range(20):
        strategy.tell(space.sample(i), 0.1 + 0.2)  # not exactly representable
    assert all(np.allclose(p, 0.2) for p in strategy.probabilities().values())


def test_failed_trials_leave_the_policy_unchanged():
    space = nf.build("space", "nb201")
    strategy = Reinforce(space, seed=0)
    drive(strategy, 20)
    before = strategy.probabilities()
    for i in range(5):
        strategy.tell(space.sample(100 + i), None)
        strategy.tell(space.sample(200 + i), float("nan"))
    after = strategy.probabilities()
    assert all(np.array_equal(before[n], after[n]) for n in before)


def test_batch_asks_sample_the_current_policy_and_stay_distinct():
    space = nf.build("space", "nb201")
    strategy = Reinforce(space, seed=4)
    drive(strategy, 60, conv3x3_count)
    before = strategy.probabilities()
    batch = [strategy.ask() for _ in range(16)]
    assert len({space.canonical(a).key for a in batch}) == 16
    assert {a.key for a in strategy.pending} == {a.key for a in batch}
    after = strategy.probabilities()
    assert all(np.array_equal(before[n], after[n]) for n in before)  # asks do not learn
    assert np.mean([conv3x3_count(a) for a in batch]) > 2.5  # drawn from the learnt policy
    for arch in reversed(batch):
        strategy.tell(arch, conv3x3_count(arch))
    assert not strategy.pending


def test_same_seed_same_asks_other_seed_other_asks():
    space = nf.build("space", "mlp")
    first = [a.key for a in drive(Reinforce(space, seed=5), 40)]
    again = [a.key for a in drive(Reinforce(space, seed=5), 40)]
    other = [a.key for a in drive(Reinforce(space, seed=6), 40)]
    assert first == again != other


def test_state_dict_round_trip_gives_identical_policy_and_asks():
    space = nf.build("space", "mlp")
    original = Reinforce(space, seed=7, lr=0.5, bins=4)
    drive(original, 30, fail_every=4)
    pending = [original.ask() for _ in range(3)]
    restored = Reinforce(space, seed=0)
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    assert restored.options == original.options
    for name, p in original.probabilities().items():
        assert np.array_equal(p, restored.probabilities()[name])
    for strategy in (original, restored):
        for arch in pending:
            strategy.tell(arch, synthetic_score(space, arch))
    assert [a.key for a in drive(original, 15)] == [a.key for a in drive(restored, 15)]


def test_from_history_replays_the_same_policy():
    space = nf.build("space", "nb201")
    original = Reinforce(space, seed=8, baseline_momentum=0.5)
    drive(original, 50, conv3x3_count, fail_every=5)
    history = [(a.key, s) for a, s in original.history]
    rebuilt = Reinforce.from_history(space, history, seed=8, **original.options)
    for name, p in original.probabilities().items():
        assert np.array_equal(p, rebuilt.probabilities()[name])
    assert rebuilt.baseline == original.baseline
    twin = Reinforce.from_history(space, history, seed=8, **original.options)
    told = {space.canonical(space.from_key(k)).key for k, _ in history}
    asks = [a.key for a in drive(rebuilt, 10, conv3x3_count)]
    assert asks == [a.key for a in drive(twin, 10, conv3x3_count)]
    assert not told & {space.canonical(space.from_key(k)).key for k in asks}


def test_told_archs_it_never_proposed_train_the_policy():
    space = nf.build("space", "nb201")
    strategy = Reinforce(space, seed=0)
    for i in range(60):
        arch = space.sample(1000 + i)
        strategy.tell(arch, conv3x3_count(arch))
    target = [p[TARGET] for p in strategy.probabilities().values()]
    assert min(target) > 0.3, target


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("lr", 0),
        ("lr", -0.1),
        ("lr", "fast"),
        ("lr", float("inf")),
        ("baseline_momentum", 1.0),
        ("baseline_momentum", -0.1),
        ("baseline_momentum", True),
        ("bins", 1),
        ("bins", 2.5),
    ],
)
def test_bad_options_name_the_option(option, value):
    with pytest.raises(ConfigError, match=option) as info:
        nf.build("strategy", "reinforce", space=nf.build("space", "nb201"), **{option: value})
    assert info.value.field == option


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        Reinforce(nf.build("space", "nb201"), 0, 0.1)  # type: ignore[misc]


def test_mlp_conditional_params_learn_only_when_active():
    space = nf.build("space", "mlp")  # depth 1-4; width_i active when depth >= i; dropout
    strategy = Reinforce(space, seed=0)
    probs = strategy.probabilities()
    assert len(probs["depth"]) == 4  # a small IntRange: one category per value
    assert len(probs["dropout"]) == 10  # a FloatRange: ten bins
    rng = np.random.default_rng(0)
    for _ in range(40):  # only depth-1 archs: width_2..4 are never active
        arch = space.arch(
            {
                "depth": 1,
                "width_1": int(rng.choice([32, 512])),
                "activation": "relu",
                "dropout": float(rng.random() * 0.5),
                "norm": "none",
            }
        )
        strategy.tell(arch, float(arch["width_1"] == 512))
    probs = strategy.probabilities()
    assert probs["width_1"][list(space["width_1"].choices).index(512)] > 0.4
    for name in ("width_2", "width_3", "width_4"):
        assert np.array_equal(probs[name], np.full(5, 0.2))


def test_mlp_policy_learns_an_activation_and_a_dropout_bin():
    space = nf.build("space", "mlp")
    strategy = Reinforce(space, seed=1)

    def score(arch) -> float:
        return float(arch["activation"] == "gelu") - abs(arch["dropout"] - 0.42)

    drive(strategy, 150, score)
    probs = strategy.probabilities()
    assert probs["activation"][list(space["activation"].choices).index("gelu")] > 0.6
    assert int(np.argmax(probs["dropout"])) in (7, 8, 9)  # bins of [0, 0.5]: 0.42 is in bin 8


def test_cnn_space_asks_are_valid_and_varied():
    space = nf.build("space", "cnn")
    strategy = Reinforce(space, seed=2)
    asked = drive(strategy, 60)
    assert all(space.contains(a) for a in asked)
    assert len({a.key for a in asked}) == 60
    assert {a["stages"] for a in asked} == {1, 2, 3}
    assert len(strategy.probabilities()["blocks_2"]) == 3


def test_float_and_wide_int_ranges_are_sampled_within_learnt_bins():
    space = ranges_space()
    strategy = Reinforce(space, seed=3, bins=5)
    probs = strategy.probabilities()
    assert set(probs) == {"x", "lr", "wide", "small", "extra"}  # not the Fixed "tag"
    assert [len(probs[n]) for n in ("x", "lr", "wide", "small")] == [5, 5, 5, 5]

    def score(arch) -> float:  # best: x near 0.9, the largest "wide" values
        return -abs(arch["x"] - 0.9) + np.log(arch["wide"]) / np.log(1000)

    asked = drive(strategy, 150, score)
    assert all(space.contains(a) and a["tag"] == "v1" for a in asked)
    assert all(isinstance(a["wide"], int) and isinstance(a["x"], float) for a in asked)
    probs = strategy.probabilities()
    assert int(np.argmax(probs["x"])) == 4 and int(np.argmax(probs["wide"])) == 4
    late = asked[-40:]
    assert np.mean([a["x"] >= 0.8 for a in late]) > 0.5
    assert np.mean([a["wide"] >= 251 for a in late]) > 0.5  # the top fifth on a log scale


def test_warm_start_archs_come_first():
    space = nf.build("space", "nb201")
    strategy = Reinforce(space, seed=0)
    warm = [space.sample(50 + i) for i in range(3)]
    strategy.warm_start([a.key for a in warm])
    first = []
    for _ in range(3):
        arch = strategy.ask()
        first.append(arch)
        strategy.tell(arch, conv3x3_count(arch))
    assert [a.key for a in first] == [a.key for a in warm]
    assert not strategy.warm_pending
    assert strategy.ask().key not in {a.key for a in warm}


def test_warm_start_skips_archs_seen_meanwhile():
    space = nf.build("space", "nb201")
    strategy = Reinforce(space, seed=0)
    warm = [space.sample(60 + i) for i in range(2)]
    strategy.warm_start(warm)
    strategy.tell(warm[0], 1.0)  # told before it was asked
    assert strategy.ask() == warm[1]
    assert not strategy.warm_pending
