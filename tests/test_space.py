"""Search-space primitives, built-in spaces and their networks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nasforge as nf
from nasforge.space import Arch, Choice, Fixed, FloatRange, IntRange, Space

NB201_EXAMPLE = "+".join(
    [
        "|nor_conv_3x3~0|",
        "|nor_conv_3x3~0|avg_pool_3x3~1|",
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    ]
)


def conditional_space() -> Space:
    return Space(
        [
            IntRange("depth", 1, 3),
            Choice("width_1", [16, 32]),
            Choice("width_2", [16, 32], when={"depth": [2, 3]}),
            Choice("width_3", [16, 32], when={"depth": [3]}),
            Choice("act", ["relu", "gelu"]),
            FloatRange("lr", 1e-4, 1e-1, log=True),
            Fixed("bias", True),
        ],
        name="cond",
    )


# --- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "field", "text"),
    [
        (lambda: IntRange("depth", 5, 1), "depth.low", "low <= high"),
        (lambda: IntRange("depth", 1, 2.5), "depth.high", "an integer"),
        (lambda: FloatRange("lr", 0.0, 1.0, log=True), "lr.low", "> 0 when log=True"),
        (lambda: FloatRange("lr", 1.0, 1.0), "lr.low", "low < high"),
        (lambda: Choice("op", []), "op.choices", "non-empty"),
        (lambda: Choice("op", ["a", "a"]), "op.choices", "distinct"),
        (lambda: Choice("op", "abc"), "op.choices", "a list"),
        (lambda: Choice("a|b", [1]), "param.name", "without '|'"),
        (lambda: Space([Choice("a", [1]), Choice("a", [2])]), "space.params.a", "unique"),
        (lambda: Space([Choice("w", [1], when={"depth": [2]})]), "w.when", "defined before"),
        (
            lambda: Space([IntRange("depth", 1, 2), Choice("w", [1], when={"depth": [7]})]),
            "w.when.depth",
            "a value of 'depth'",
        ),
    ],
)
def test_invalid_definitions_name_the_field(make, field, text):
    with pytest.raises(nf.ConfigError) as info:
        make()
    assert info.value.field == field
    assert text in str(info.value)


def test_from_dict_errors_name_field_and_allowed_values():
    with pytest.raises(nf.ConfigError, match=r"space.params.x.type must be one of") as info:
        Space.from_dict({"params": {"x": {"type": "categorial", "choices": [1]}}})
    assert "Did you mean 'categorical'" not in str(info.value)  # no such type exists
    with pytest.raises(nf.ConfigError, match="one of the fields"):
        Space.from_dict({"params": {"x": {"type": "int", "low": 0, "hi": 3}}})
    with pytest.raises(nf.ConfigError, match=r"space\.params must be"):
        Space.from_dict({"params": {}})


def test_arch_validation_names_the_parameter():
    space = conditional_space()
    with pytest.raises(nf.ConfigError, match=r"act must be one of \['relu', 'gelu'\]"):
        space.arch({"depth": 1, "width_1": 16, "act": "tanh", "lr": 0.01})
    with pytest.raises(nf.ConfigError, match="width_3 must be absent"):
        space.arch({"depth": 1, "width_1": 16, "width_3": 16, "act": "relu", "lr": 0.01})
    with pytest.raises(nf.ConfigError, match="width_2"):
        space.arch({"depth": 2, "width_1": 16, "act": "relu", "lr": 0.01})


# --- archs, keys, round trips ---------------------------------------------------------------
def test_arch_is_immutable_hashable_and_compared_by_key():
    space = conditional_space()
    a = space.sample(seed=1)
    b = space.from_key(a.key)
    assert a == b and hash(a) == hash(b) and {a, b} == {a}
    assert isinstance(a, Arch) and dict(a) == a.to_dict()
    with pytest.raises(TypeError):
        a["depth"] = 2  # type: ignore[index]
    assert a.key.startswith(f"depth={a['depth']}|width_1=")
    assert "bias=True" in a.key


def test_conditional_parameters_follow_their_parent():
    space = conditional_space()
    for seed in range(50):
        arch = space.sample(seed=seed)
        depth = arch["depth"]
        assert all((f"width_{i}" in arch) == (i <= depth) for i in (1, 2, 3))


def test_space_round_trips_through_dict_and_yaml():
    space = conditional_space()
    assert Space.from_dict(space.to_dict()) == space
    assert Space.from_yaml(space.to_yaml()) == space
    shorthand = Space.from_dict({"params": {"act": ["relu", "gelu"], "bias": True}})
    assert isinstance(shorthand["act"], Choice) and isinstance(shorthand["bias"], Fixed)


def test_size_and_grid_agree_with_conditionals():
    space = Space(
        [
            IntRange("depth", 1, 3),
            Choice("width_1", [16, 32]),
            Choice("width_2", [16, 32, 64], when={"depth": [2, 3]}),
            Choice("act", ["relu", "gelu"]),
        ]
    )
    grid = list(space.grid())
    # depth 1: 2*2; depth 2 and 3: 2*3*2 each
    assert space.size == len(grid) == 4 + 12 + 12
    assert len({a.key for a in grid}) == len(grid)
    assert conditional_space().size is None


def test_mutate_changes_exactly_n_parameters():
    space = nf.build("space", "nb201")
    rng = np.random.default_rng(0)
    for n in (1, 2, 3):
        for _ in range(20):
            arch = space.sample(rng)
            child = space.mutate(arch, rng, n=n)
            assert sum(arch[k] != child[k] for k in arch) == n


def test_neighbors_of_nb201_are_the_24_one_edit_cells():
    space = nf.build("space", "nb201")
    arch = space.from_key(NB201_EXAMPLE)
    neighbors = space.neighbors(arch)
    assert len(neighbors) == len({n.key for n in neighbors}) == 24
    assert all(sum(arch[k] != n[k] for k in arch) == 1 for n in neighbors)


def test_integer_and_float_neighbors_are_one_step_away():
    space = Space([IntRange("d", 1, 5), FloatRange("x", 0.0, 1.0)])
    arch = space.arch({"d": 1, "x": 0.5})
    assert {(n["d"], round(n["x"], 6)) for n in space.neighbors(arch)} == {
        (2, 0.5),
        (1, 0.4),
        (1, 0.6),
    }


def test_crossover_takes_every_value_from_a_parent():
    space = nf.build("space", "nb201")
    a, b = space.sample(1), space.sample(2)
    for seed in range(20):
        child = space.crossover(a, b, seed)
        assert all(child[k] in (a[k], b[k]) for k in child)


def test_encode_is_one_hot_for_choices_and_scaled_for_ranges():
    space = conditional_space()
    arch = space.arch({"depth": 1, "width_1": 32, "act": "gelu", "lr": 1e-4})
    code = space.encode(arch)
    assert code.shape == (space.encoding_width,)
    blocks = {name: code[a:b].tolist() for name, a, b in space.encode_blocks()}
    assert blocks["depth"] == [0.0]
    assert blocks["width_1"] == [0.0, 1.0]
    assert blocks["width_2"] == [0.0, 0.0]  # inactive
    assert blocks["act"] == [0.0, 1.0]
    assert blocks["lr"] == pytest.approx([0.0])


def test_compose_prefixes_names_and_conditions():
    head = Space([IntRange("layers", 1, 2), Choice("w2", [8, 16], when={"layers": [2]})])
    both = Space.compose(nf.build("space", "nb201"), head=head)
    assert "head.w2" in [p.name for p in both.params]
    assert both["head.w2"].when == (("head.layers", (2,)),)
    assert both.size == 15625 * (1 + 2)
    assert len((head + Space([Choice("act", ["relu"])])).params) == 3


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3))
def test_sampled_and_mutated_archs_are_members(seed, n):
    space = conditional_space()
    arch = space.sample(seed)
    assert space.contains(arch)
    assert space.from_key(arch.key) == arch
    child = space.mutate(arch, seed, n=n)
    assert space.contains(child)
    assert child != arch


# --- NB201 ----------------------------------------------------------------------------------
def test_nb201_keys_are_standard_cell_strings():
    space = nf.build("space", "nb201")
    assert space.size == 15625
    arch = space.from_key(NB201_EXAMPLE)
    assert arch.key == NB201_EXAMPLE
    assert arch["edge_2_1"] == "avg_pool_3x3" and arch["edge_3_2"] == "skip_connect"
    with pytest.raises(nf.ConfigError, match="cell string"):
        space.from_key("|nor_conv_3x3~0|+|nor_conv_3x3~0|")
    with pytest.raises(nf.ConfigError, match="edge_1_0 must be one of"):
        space.from_key(
            NB201_EXAMPLE.replace("nor_conv_3x3~0|+|nor_conv_3x3~0", "conv~0|+|nor_conv_3x3~0", 1)
        )


def test_nb201_keys_match_the_table():
    from pathlib import Path

    csv = (
        Path(__file__).resolve().parents[1]
        / ".."
        / "shared"
        / "data"
        / "nb201"
        / "nb201_cifar10.csv"
    )
    if not csv.exists():
        pytest.skip("NB201 table not available")
    bench = nf.TabularBenchmark.from_csv(csv, key="arch")
    space = nf.build("space", "nb201")
    assert {a.key for a in space.grid()} == set(bench.keys())


def test_spaces_without_equivalences_are_their_own_canonical_form():
    space = conditional_space()
    arch = space.sample(0)
    assert space.canonical(arch) is arch
    assert nf.build("space", "mlp").distinct_size == nf.build("space", "mlp").size


def test_nb201_canonical_form_drops_dead_edges_identities_and_summation_order():
    space = nf.build("space", "nb201")
    assert space.distinct_size == 4660
    lone_conv = space.from_key("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    for key in (
        # skip -> conv -> skip: the same single convolution of the input
        "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|",
        # node 1 is dead (no input), node 2 never reaches the output
        "|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|",
    ):
        assert space.canonical(space.from_key(key)) == lone_conv
    assert space.canonical(lone_conv) == lone_conv
    # sums are unordered: conv1(x) + conv3(x) either way round
    a = space.from_key(
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
    )
    b = space.from_key(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
    )
    assert space.canonical(a) == space.canonical(b) != space.canonical(lone_conv)
    # different ops, different functions
    conv1 = space.from_key("|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert space.canonical(conv1) != space.canonical(lone_conv)


def _tied_cell_output(torch, ops, x):
    """The output of one NB201 cell whose convolutions of a kind all share weights."""
    from nasforge.space._torch import NB201Cell

    cell = NB201Cell(ops, x.shape[1]).eval()
    gen = torch.Generator().manual_seed(0)
    shared = {k: torch.randn(x.shape[1], x.shape[1], k, k, generator=gen) for k in (1, 3)}
    for module in cell.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.copy_(shared[module.kernel_size[0]])
    with torch.no_grad():
        return cell(x)


def test_nb201_equivalent_cells_compute_the_same_function():
    """Checked on built cells: with the weights of each op kind shared, equivalent cells give
    the same output and the representatives of different classes do not."""
    torch = pytest.importorskip("torch")
    from nasforge.space.builtin import NB201_EDGES

    space = nf.build("space", "nb201")
    x = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(1))
    classes: dict[str, list[Arch]] = {}
    for arch in space.grid():
        classes.setdefault(space.canonical(arch).key, []).append(arch)
    rng = np.random.default_rng(0)
    keys = sorted(classes)
    outputs = {}
    for i in rng.choice(len(keys), size=60, replace=False):
        members = classes[keys[i]]
        picks = [members[int(j)] for j in rng.choice(len(members), min(4, len(members)), False)]
        out = [
            _tied_cell_output(torch, [a[f"edge_{t}_{f}"] for t, f in NB201_EDGES], x) for a in picks
        ]
        for other in out[1:]:
            torch.testing.assert_close(other, out[0], rtol=1e-5, atol=1e-5)
        outputs[keys[i]] = out[0]
    distinct = list(outputs.values())
    for i, first in enumerate(distinct):
        for second in distinct[i + 1 :]:
            assert not torch.allclose(first, second, rtol=1e-4, atol=1e-4)


# --- networks (torch) -----------------------------------------------------------------------
def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_nb201_network_matches_published_parameter_range():
    torch = pytest.importorskip("torch")
    space = nf.build("space", "nb201")
    smallest = space.from_key("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    largest = space.arch({p.name: "nor_conv_3x3" for p in space.params})
    small, large = space.build(smallest, num_classes=10), space.build(largest, num_classes=10)
    assert round(_params(small) / 1e6, 2) == 0.07
    assert round(_params(large) / 1e6, 2) == 1.53
    model = space.build(space.from_key(NB201_EXAMPLE), num_classes=10).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    torch.fx.symbolic_trace(model)
    cells = [m for m in model.modules() if type(m).__name__ == "NB201Cell"]
    assert len(cells) == 15


@pytest.mark.parametrize("shape", [(1, 40), (3, 16, 16), (1, 8, 8)])
def test_cnn_builds_for_1d_and_2d_inputs(shape):
    torch = pytest.importorskip("torch")
    space = nf.build("space", "cnn")
    for seed in range(3):
        model = space.build(space.sample(seed), input_shape=shape, num_classes=7).eval()
        assert model(torch.randn(2, *shape)).shape == (2, 7)
        torch.fx.symbolic_trace(model)
    conv = torch.nn.Conv1d if len(shape) == 2 else torch.nn.Conv2d
    assert any(isinstance(m, conv) for m in model.modules())


def test_mlp_builds_the_sampled_architecture():
    torch = pytest.importorskip("torch")
    space = nf.build("space", "mlp", max_depth=3)
    arch = space.arch(
        {
            "depth": 2,
            "width_1": 64,
            "width_2": 32,
            "activation": "gelu",
            "dropout": 0.1,
            "norm": "layer",
        }
    )
    model = space.build(arch, input_shape=(1, 40), num_classes=10).eval()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(40, 64), (64, 32), (32, 10)]
    assert any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())
    assert model(torch.randn(3, 1, 40)).shape == (3, 10)
    torch.fx.symbolic_trace(model)


def test_build_rejects_bad_shapes_with_the_expected_form():
    space = nf.build("space", "cnn")
    with pytest.raises(
        nf.ConfigError, match=r"input_shape must be \(F,\) or \(C, L\) or \(C, H, W\)"
    ):
        space.build(space.sample(0), input_shape=(1, 2, 3, 4), num_classes=10)
    with pytest.raises(nf.ConfigError, match="num_classes"):
        space.build(space.sample(0), input_shape=(1, 40), num_classes=0)
    with pytest.raises(NotImplementedError, match="does not build models"):
        conditional_space().build(conditional_space().sample(0))


def test_defining_and_searching_spaces_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, nasforge as nf\n"
        "s = nf.build('space', 'cnn'); a = s.sample(0)\n"
        "st = nf.build('strategy', 'bayesian', space=s, seed=0)\n"
        "[st.tell(st.ask(), 1.0) for _ in range(12)]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_space_from_yaml_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(conditional_space().to_yaml())
    assert Space.from_yaml(path) == conditional_space()
    assert Space.from_yaml(str(path)) == conditional_space()
    with pytest.raises(nf.ConfigError, match="an existing YAML file"):
        Space.from_yaml(tmp_path / "missing.yaml")
