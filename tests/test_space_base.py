"""Spaces as data (nasforge.space.base): reading them from dicts and YAML with the messages
that name the bad field, writing them back, composing, comparing, enumerating, encoding."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import yaml

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.space import Arch, Choice, Fixed, FloatRange, IntRange, Space


def refusal(call, *args) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args)
    return info.value


def small() -> Space:
    return Space([IntRange("depth", 1, 3), Choice("act", ["relu", "gelu"])], name="small")


# --- from_dict --------------------------------------------------------------------------------
def test_a_space_is_read_from_parameter_specs_and_shorthands():
    space = Space.from_dict(
        {
            "name": "toy",
            "params": {
                "depth": {"type": "int", "low": 1, "high": 3},
                "act": ["relu", "gelu"],
                "pool": ("max", "avg"),
                "bias": True,
                "none": None,
                "lr": {"low": 0.1, "high": 1.0, "type": "float", "log": True},
                "op": {"choices": ["a", "b"], "when": {"depth": [2, 3]}},
                "k": {"value": 3},
                "made": IntRange("made", 0, 1),
            },
        }
    )
    assert space.name == "toy"
    assert space["depth"] == IntRange("depth", 1, 3)
    assert space["act"] == Choice("act", ["relu", "gelu"])
    assert space["pool"] == Choice("pool", ["max", "avg"])
    assert space["bias"] == Fixed("bias", True)
    assert space["none"] == Fixed("none", None)
    assert space["lr"] == FloatRange("lr", 0.1, 1.0, log=True)
    assert space["op"] == Choice("op", ["a", "b"], when={"depth": [2, 3]})
    assert space["k"] == Fixed("k", 3)
    assert space["made"] == IntRange("made", 0, 1)
    assert Space.from_dict({"params": {"x": [1]}}).name == "space"


@pytest.mark.parametrize("data", [[1], "params", None])
def test_a_space_definition_is_a_mapping(data):
    error = refusal(Space.from_dict, data)
    assert error.field == "space"
    assert str(error) == (
        f"space must be a mapping with a 'params' or an 'options' entry, but got {data!r}"
    )


def test_unknown_top_level_keys_are_named():
    expected = (
        "space must be the keys 'name' and either 'params' (parameters) or 'options' (a "
        "registered space's constructor options), but got "
    )
    error = refusal(Space.from_dict, {"params": {"x": [1]}, "zeta": 1, "alpha": 2})
    assert (error.field, str(error)) == ("space", expected + "'alpha'")
    error = refusal(Space.from_dict, {"name": "mlp", "params": {"x": [1]}, "options": {}})
    assert str(error) == expected + "['name', 'options', 'params']"


def test_a_registered_space_is_read_by_name_and_options():
    options = {"max_depth": 1, "widths": [8]}
    space = Space.from_dict({"name": "mlp", "options": options})
    assert space == nf.build("space", "mlp", **options)
    assert Space.from_dict({"name": "MLP", "options": options}) == space
    assert Space.from_dict({"name": "nb201"}) == nf.build("space", "nb201")
    assert Space.from_dict(space.to_dict()) == space


@pytest.mark.parametrize("name", ["nope", 3, None])
def test_an_unknown_registered_space_lists_the_known_ones(name):
    error = refusal(Space.from_dict, {"name": name, "options": {}})
    assert error.field == "space.name"
    assert str(error) == (
        f"space.name must be a registered space ({', '.join(nf.available('space'))}), but got "
        f"{name!r}. HINT: or give the parameters under 'params'"
    )


@pytest.mark.parametrize("options", [[1], "max_depth=1", {1: 2}])
def test_the_options_of_a_registered_space_are_a_mapping_of_names(options):
    error = refusal(Space.from_dict, {"name": "mlp", "options": options})
    assert error.field == "space.options"
    assert str(error) == f"space.options must be a mapping of options, but got {options!r}"


def test_unknown_options_of_a_registered_space_name_the_accepted_ones():
    error = refusal(Space.from_dict, {"name": "mlp", "options": {"colour": 1}})
    assert "cannot build space 'mlp'" in str(error) and "max_depth" in str(error)


def test_a_space_plugin_must_build_a_space():
    @nf.register("space", "not_a_space")
    def not_a_space():
        return [1, 2]

    try:
        error = refusal(Space.from_dict, {"name": "not_a_space"})
        assert error.field == "space.name"
        assert str(error) == (
            "space.name must be a space plugin that builds a Space, but got 'not_a_space'"
        )
    finally:
        nf.unregister("space", "not_a_space")


@pytest.mark.parametrize("params", [{}, [["x", [1]]], None])
def test_parameters_are_a_non_empty_mapping(params):
    error = refusal(Space.from_dict, {"params": params})
    assert error.field == "space.params"
    assert str(error) == (
        f"space.params must be a non-empty mapping of parameter name -> spec, but got {params!r}"
    )


def test_the_name_of_a_space_is_a_non_empty_string():
    error = refusal(Space.from_dict, {"name": "", "params": {"x": [1]}})
    assert (error.field, str(error)) == (
        "space.name",
        "space.name must be a non-empty string, but got ''",
    )


def test_a_spec_without_a_known_type_is_refused():
    error = refusal(Space.from_dict, {"params": {"x": {"low": 1, "high": 2}}})
    assert error.field == "space.params.x.type"
    assert str(error) == (
        "space.params.x.type must be one of ['choice', 'fixed', 'float', 'int'], but got None"
    )
    error = refusal(Space.from_dict, {"params": {"x": {"type": "flaot", "low": 1, "high": 2}}})
    assert str(error) == (
        "space.params.x.type must be one of ['choice', 'fixed', 'float', 'int'], but got "
        "'flaot'. HINT: Did you mean 'float'?"
    )
    error = refusal(Space.from_dict, {"params": {"x": {"type": 3}}})
    assert str(error).endswith("but got 3")


def test_unknown_and_missing_fields_of_a_spec_are_named():
    error = refusal(Space.from_dict, {"params": {"x": {"type": "int", "low": 0, "hi": 3}}})
    assert (error.field, str(error)) == (
        "space.params.x",
        "space.params.x must be one of the fields ['high', 'log', 'low', 'step', 'when'], "
        "but got 'hi'",
    )
    error = refusal(Space.from_dict, {"params": {"x": {"type": "choice", "values": [1]}}})
    assert str(error) == (
        "space.params.x must be one of the fields ['choices', 'when'], but got 'values'"
    )
    error = refusal(Space.from_dict, {"params": {"x": {"type": "int", "low": 0}}})
    assert (error.field, str(error)) == (
        "space.params.x.high",
        "space.params.x: the int parameter needs high",
    )
    error = refusal(Space.from_dict, {"params": {"x": {"type": "float"}}})
    assert (error.field, str(error)) == (
        "space.params.x.low",
        "space.params.x: the float parameter needs low and high",
    )
    error = refusal(Space.from_dict, {"params": {"x": {"type": "fixed"}}})
    assert str(error) == "space.params.x: the fixed parameter needs value"


def test_keys_that_are_not_strings_are_named_too():
    # YAML turns `1: 2` into an integer key; it must not break the error message
    spec = {"type": "int", "low": 0, "high": 3, 1: 2, "z": 3}
    error = refusal(Space.from_dict, {"params": {"x": spec}})
    assert str(error).endswith("but got 1")
    error = refusal(Space.from_dict, {"params": {"x": [1]}, 1: 2, "z": 3})
    assert error.field == "space" and str(error).endswith("but got 1")
    space = Space.from_dict({"params": {"x": [1]}})
    error = refusal(space.arch, {"x": 1, 2: 3, "y": 4})
    assert (error.field, str(error)) == (
        "arch",
        "arch must be parameters of this space: ['x'], but got 2",
    )
    error = refusal(space.__getitem__, 3)
    assert (error.field, str(error)) == ("param", "param must be one of ['x'], but got 3")


def test_hints_suggest_close_names_once():
    space = Space([IntRange("depth", 1, 2), Choice("act", ["relu"])])
    assert str(refusal(space.__getitem__, "dept")) == (
        "param must be one of ['depth', 'act'], but got 'dept'. HINT: Did you mean 'depth'?"
    )
    assert str(refusal(space.arch, {"depth": 1, "act": "relu", "acts": 1})).endswith(
        "but got 'acts'. HINT: Did you mean 'act'?"
    )
    error = refusal(Space, [IntRange("depth", 1, 2), Choice("w", [1], when={"dpth": [1]})])
    assert str(error).endswith("HINT: list parents before their children. Did you mean 'depth'?")


# --- YAML ----------------------------------------------------------------------------------
def test_yaml_text_files_and_paths_give_the_same_space(tmp_path):
    space = small()
    text = space.to_yaml()
    (tmp_path / "space.yaml").write_text(text)
    (tmp_path / "space.yml").write_text(text)
    assert Space.from_yaml(text) == space
    assert Space.from_yaml(tmp_path / "space.yaml") == space
    assert Space.from_yaml(str(tmp_path / "space.yml")) == space
    assert Space.from_yaml(text + "# saved as space.yaml") == space  # text, not a path
    assert Space.from_yaml("{params: {act: [relu, gelu]}}")["act"] == Choice(
        "act", ["relu", "gelu"]
    )


def test_to_yaml_keeps_the_definition_order():
    space = Space([IntRange("z", 0, 1), Choice("a", [1, 2])], name="order")
    text = space.to_yaml()
    assert text.startswith("name: order\nparams:\n  z:\n    type: int\n")
    assert list(yaml.safe_load(text)["params"]) == ["z", "a"]


def test_a_missing_yaml_file_or_bad_yaml_is_a_config_error(tmp_path):
    missing = tmp_path / "missing.yaml"
    for source in (missing, str(missing)):
        error = refusal(Space.from_yaml, source)
        assert (error.field, str(error)) == (
            "space",
            f"space must be an existing YAML file, but got {str(missing)!r}",
        )
    error = refusal(Space.from_yaml, "params: [1\nname: x")
    assert error.field == "space"
    assert str(error).startswith("space: not valid YAML: ")
    assert "flow sequence" in str(error)


# --- composing, comparing, describing --------------------------------------------------------
def test_composed_spaces_are_named_after_their_parts():
    a, b = small(), Space([Choice("op", ["x"])], name="ops")
    assert Space.compose(a, b, head=Space([Fixed("k", 1)])).name == "small+ops+head"
    assert (a + b).name == "small+ops"
    assert a.__add__(3) is NotImplemented


def test_spaces_are_equal_by_type_and_definition():
    class Other(Space):
        pass

    a = small()
    assert a == small() and hash(a) == hash(small())
    assert Other(a.params, name="small") != a
    assert Other(a.params, name="small").to_dict() == a.to_dict()
    assert a != Space(a.params, name="other")
    assert a != "small" and (a == 3) is False
    assert len({a, small(), Space([Choice("act", ["relu"])])}) == 2


def test_repr_gives_the_name_the_parameters_and_the_size():
    assert repr(small()) == "Space(name='small', params=2, size=6)"
    floats = Space([FloatRange("x", 0, 1), Fixed("k", 1)], name="f")
    assert repr(floats) == "Space(name='f', params=2, size=inf)"


def test_membership_takes_mappings_and_archs_only():
    space = small()
    arch = space.arch({"depth": 2, "act": "gelu"})
    assert arch in space and {"depth": 2, "act": "gelu"} in space
    assert {"depth": 9, "act": "gelu"} not in space
    assert arch.key not in space and 3 not in space
    assert Arch({"depth": 2, "act": "gelu"}, "other-key") not in space


def test_archs_hash_by_their_key():
    arch = small().arch({"depth": 1, "act": "relu"})
    assert hash(arch) == hash(arch.key) == hash(Arch({}, arch.key))
    assert repr(arch) == "Arch('depth=1|act=relu')"


def test_arch_errors_describe_what_the_parameter_takes():
    space = Space(
        [
            IntRange("d", 1, 3),
            FloatRange("x", 0.0, 1.0, when={"d": [2]}),
            Fixed("k", 3),
            Choice("a", ["u", "v"]),
        ]
    )
    cases = [
        ({"d": 7, "a": "u"}, "d must be a", "int in [1, 3], but got 7"),
        ({"d": 2, "x": 2.0, "a": "u"}, "x must be a", "float in [0.0, 1.0], but got 2.0"),
        ({"d": 1, "k": 4, "a": "u"}, "k must be", " 3, but got 4"),
        ({"d": 1, "a": "w"}, "a must be", " one of ['u', 'v'], but got 'w'"),
    ]
    for values, start, end in cases:
        message = str(refusal(space.arch, values))
        assert message.startswith(start) and message.endswith(end)


def test_build_is_for_spaces_that_describe_networks():
    class Mine(Space):
        pass

    space = Mine([Choice("a", [1])], name="mine")
    with pytest.raises(NotImplementedError) as info:
        space.build(space.sample(0))
    assert str(info.value) == (
        "Mine 'mine' does not build models; use a space such as 'mlp', 'cnn' or 'nb201', or "
        "subclass Space and implement build()"
    )


# --- grids and encodings -----------------------------------------------------------------------
def test_grid_takes_five_values_of_a_range_by_default():
    space = Space([FloatRange("x", 0.0, 1.0)])
    assert [a["x"] for a in space.grid()] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(list(space.grid(2))) == 2
    error = refusal(lambda: list(space.grid(1)))
    assert (error.field, str(error)) == (
        "resolution",
        "resolution must be an integer >= 2, but got 1",
    )


def test_conditional_numbers_add_an_active_flag_to_the_encoding():
    space = Space(
        [
            Choice("d", [1, 2]),
            IntRange("w", 1, 3, when={"d": [2]}),
            Choice("c", ["a", "b"], when={"d": [2]}),
            Fixed("k", 0),
            FloatRange("x", 0.0, 1.0),
        ]
    )
    assert space.encoding_width == 7
    assert space.encode_blocks() == [("d", 0, 2), ("w", 2, 4), ("c", 4, 6), ("x", 6, 7)]
    on = space.arch({"d": 2, "w": 3, "c": "b", "x": 0.5})
    assert space.encode(on).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.5]
    off = space.arch({"d": 1, "x": 0.25})
    assert space.encode(off).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25]
    assert isinstance(space.encode(off), np.ndarray)


def test_parse_key_reads_name_value_parts_and_names_what_is_malformed():
    space = Space([Choice("op", ["x", "y"]), IntRange("n", 0, 3)], name="keys")
    assert space.parse_key("op=y|n=2") == {"op": "y", "n": 2}
    assert space.parse_key("") == {}  # e.g. the key of an arch whose parameters are inactive
    with pytest.raises(ConfigError) as info:
        space.parse_key("op=y|n")
    assert (str(info.value), info.value.field) == (
        "key must be 'name=value' parts joined by '|', but got 'op=y|n'",
        "key",
    )
    with pytest.raises(ConfigError) as info:
        space.parse_key("n=1=2")  # the name ends at the first '='
    assert (str(info.value), info.value.field) == ("n must be an integer, but got '1=2'", "n")


def test_neighbors_skip_inactive_parameters_and_go_on_to_the_next():
    space = Space(
        [
            Choice("kind", ["a", "b"]),
            IntRange("depth", 1, 3, when={"kind": ["a"]}),
            IntRange("width", 1, 3),
        ],
        name="cond",
    )
    arch = space.arch({"kind": "b", "width": 2})
    assert sorted(n.key for n in space.neighbors(arch)) == [
        "kind=a|depth=1|width=2",
        "kind=b|width=1",
        "kind=b|width=3",
    ]


def test_archs_pickle_as_their_values_and_key():
    space = Space([Choice("op", ["x", "y"]), FloatRange("lr", 1e-3, 1.0, log=True)], name="p")
    arch = space.arch({"op": "y", "lr": 0.01})
    copy = pickle.loads(pickle.dumps(arch))
    assert (copy, copy.key, copy.to_dict()) == (arch, arch.key, arch.to_dict())


def test_crossover_samples_a_parameter_that_neither_parent_has_from_the_seed():
    space = Space(
        [
            Choice("k1", ["x", "w"]),
            Choice("k2", ["y", "z"]),
            IntRange("p", 0, 1000, when={"k1": ["x"], "k2": ["y"]}),
        ],
        name="cross",
    )
    a, b = space.arch({"k1": "x", "k2": "z"}), space.arch({"k1": "w", "k2": "y"})
    children = [space.crossover(a, b, seed) for seed in range(10)]
    assert [c.key for c in children if "p" in c] == [
        "k1=x|k2=y|p=755",
        "k1=x|k2=y|p=518",
        "k1=x|k2=y|p=962",
    ]
    assert space.crossover(a, b, 1) == children[1]
