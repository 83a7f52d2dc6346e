"""Malformed options end in a ConfigError naming the option, for every built-in plugin.

Each constructor argument of every registered plugin (and every TrainConfig field) is fed
values its type annotation rules out: booleans for numbers, strings for numbers,
non-strings for names, NaN and infinities, lone strings for lists, numbers for models.
The CLI's ``model`` and ``data`` sections get malformed values too, and must end in one
``error:`` line with exit status 1, never a traceback.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Mapping, Sequence

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import nasforge as nf
from nasforge.cli import main
from nasforge.space import Choice, IntRange, Space

#: Arguments that give a plugin what it needs to exist; every other argument is fuzzed.
CONTEXT = ("space", "teacher", "table", "data", "self")


def _space() -> Space:
    return Space([Choice("op", ["a", "b"]), IntRange("n", 1, 3)], name="toy")


def _context(kind: str, name: str) -> dict[str, object]:
    data = nf.load_dataset(
        "synthetic", num_samples=60, input_shape=(4,), num_classes=3, noise=0.5, seed=0
    )
    space = nf.build("space", "mlp", max_depth=1, widths=[4]) if kind == "evaluator" else _space()
    if (kind, name) == ("evaluator", "compression"):
        space = nf.build("space", "compressed", base=space, prune=[0.0, 0.5])
    if (kind, name) == ("evaluator", "transfer"):
        space = nf.build("space", "transfer", backbone="resnet18")
    return {
        "space": space,
        "teacher": nn.Sequential(nn.Linear(4, 3)),
        "table": {"op=a|n=1": {"acc": 0.5}},
        "data": data,
    }


def _plugins() -> list[tuple[str, str]]:
    return [(kind, name) for kind in nf.KINDS for name in nf.available(kind)]


def _hints(factory: object) -> dict[str, object]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    return typing.get_type_hints(target)


def _parameters() -> list[tuple[str, str, str]]:
    """Every (kind, name, argument) to fuzz: keyword arguments with an annotation."""
    cases = []
    for kind, name in _plugins():
        factory = nf.get(kind, name)
        hints = _hints(factory)
        for param in inspect.signature(factory).parameters.values():
            if param.name in CONTEXT or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            if param.name in hints and _malformed(hints[param.name]) is not None:
                cases.append((kind, name, param.name))
    return cases


def _members(annotation: object) -> list[object]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _members(a)]
    return [annotation]


def _accepts(annotation: object) -> set[str]:
    """What kinds of value an annotation admits."""
    kinds = set()
    for member in _members(annotation):
        origin = typing.get_origin(member) or member
        if member in (typing.Any, object):
            kinds.add("any")
        elif member is type(None):
            kinds.add("none")
        elif origin is typing.Literal or member is str:
            kinds.add("str")
        elif member in (bool, int, float):
            kinds.add(member.__name__)
        elif origin in (list, tuple, Sequence):
            item = (typing.get_args(member) or (typing.Any,))[0]
            # a list of ints is a list of floats too
            kinds.add("int_list" if item in (int, float, typing.Any) else "list")
        elif origin in (dict, Mapping):
            kinds.add("mapping")
        elif origin is type or "Callable" in str(member):
            kinds.add("callable")
        else:
            kinds.add("instance")
    return kinds


def _malformed(annotation: object) -> st.SearchStrategy | None:
    """Values that no member of ``annotation`` admits (None: it admits anything)."""
    takes = _accepts(annotation)
    if "any" in takes:
        return None
    numbers = {"int", "float"} & takes
    bad: list[st.SearchStrategy] = [st.sampled_from([math.nan, math.inf, -math.inf])]
    if "bool" not in takes:
        bad.append(st.booleans())
    if "str" not in takes:
        bad.append(st.text(max_size=5))
    if not numbers:
        bad.append(st.integers(-3, 3))
    if "float" not in takes:
        bad.append(st.floats(0.1, 9.9).filter(lambda v: not v.is_integer()))
    if "int_list" not in takes:
        bad.append(st.lists(st.integers(0, 3), min_size=1, max_size=2))
    if takes & {"int_list", "list"} and "str" not in takes:
        bad.append(st.just("abc"))
    if "mapping" not in takes:
        bad.append(st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), min_size=1))
    literal = [m for m in _members(annotation) if typing.get_origin(m) is typing.Literal]
    if literal and str not in _members(annotation):
        bad.append(st.just("definitely-not-an-option"))
    return st.one_of(bad)


FUZZ = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize(("kind", "name", "argument"), _parameters())
def test_malformed_plugin_option_is_a_config_error(kind, name, argument):
    factory = nf.get(kind, name)
    hints = _hints(factory)
    context = _context(kind, name)
    parameters = inspect.signature(factory).parameters
    base = {k: v for k, v in context.items() if k in parameters}

    @FUZZ
    @given(value=_malformed(hints[argument]))
    def check(value):
        with pytest.raises(nf.ConfigError) as info:
            nf.build(kind, name, **base, **{argument: value})
        assert argument in str(info.value) or argument in (info.value.field or "")

    check()


def test_every_plugin_kind_is_fuzzed():
    fuzzed = {(kind, name) for kind, name, _ in _parameters()}
    for kind, name in _plugins():
        parameters = inspect.signature(nf.get(kind, name)).parameters
        if any(p not in CONTEXT for p in parameters):
            assert (kind, name) in fuzzed, f"{kind} {name!r} has options but none is fuzzed"


@pytest.mark.parametrize("option", nf.TrainConfig.FIELDS)
def test_malformed_training_option_is_a_config_error(option):
    annotation = typing.get_type_hints(nf.TrainConfig)[option]

    @FUZZ
    @given(value=_malformed(annotation))
    def check(value):
        with pytest.raises(nf.ConfigError, match=option):
            nf.TrainConfig(**{option: value})
        with pytest.raises(nf.ConfigError, match=f"training.{option}"):
            nf.TrainConfig.from_dict({option: value})

    check()


# ------------------------------------------------------------------------- the CLI
# (Built without .filter: it trips an internal assertion of Hypothesis on list strategies.)
_NAMES = st.text(alphabet="xyz:", max_size=4)  # never a model, dataset or importable module
_LISTS = st.lists(st.integers(0, 2), min_size=1, max_size=2)
_MAPPINGS = st.dictionaries(st.sampled_from(["a", "zz"]), st.integers(0, 2), min_size=1)
_JUNK = st.one_of(st.integers(-2, 2), st.booleans(), _NAMES, _LISTS, _MAPPINGS)
_NOT_A_MAPPING = st.one_of(st.integers(1, 2), st.just(True), _NAMES.map(lambda t: t + "x"), _LISTS)
_NOT_AN_INT = st.one_of(st.sampled_from([1.5, 2.5]), _NAMES, _LISTS, _MAPPINGS)
_MODEL_SECTIONS = st.one_of(
    _JUNK,
    st.fixed_dictionaries({"name": _JUNK}),
    st.fixed_dictionaries({"name": st.just("resnet18"), "kwargs": _NOT_A_MAPPING}),
    st.fixed_dictionaries({"name": st.just("resnet18"), "kwargs": _MAPPINGS}),
    st.fixed_dictionaries(
        {"name": st.just("resnet18"), "kwargs": st.fixed_dictionaries({"num_classes": _NOT_AN_INT})}
    ),
    st.fixed_dictionaries(
        {
            "name": st.just("resnet18"),
            "train_epochs": st.one_of(st.integers(-3, -1), st.booleans(), _NOT_AN_INT),
        }
    ),
    st.fixed_dictionaries({"name": st.sampled_from(["no_such_module:build", "math:nope"])}),
    st.fixed_dictionaries({"name": st.just("math:sqrt"), "kwargs": st.just({"x": 4})}),
)
_BAD_DIGITS_OPTIONS = st.one_of(
    st.fixed_dictionaries({"size": st.one_of(st.integers(-2, 7), st.booleans(), _NOT_AN_INT)}),
    st.fixed_dictionaries({"channels": st.one_of(st.sampled_from([0, 2, 4]), _NOT_AN_INT)}),
    st.fixed_dictionaries({"seed": st.one_of(st.integers(-3, -1), st.booleans(), _NOT_AN_INT)}),
    st.fixed_dictionaries({"val_fraction": st.one_of(st.floats(1.0, 3.0), st.booleans(), _LISTS)}),
    _MAPPINGS,  # unknown options
)
_DATA_SECTIONS = st.one_of(
    _JUNK,
    st.fixed_dictionaries({"name": st.just("digits"), "options": _NOT_A_MAPPING}),
    st.fixed_dictionaries({"name": st.just("digits"), "options": _BAD_DIGITS_OPTIONS}),
    st.fixed_dictionaries({"name": st.just("math:floor"), "options": st.just({"x": 1.5})}),
    st.fixed_dictionaries({"name": st.just("json:loads"), "options": st.just({"s": "{"})}),
)


def _tiny_compress_config(model: object, data: object) -> dict[str, object]:
    return {
        "model": model,
        "data": data,
        "trainer": {"epochs": 1, "progress": False},
        "compressors": [{"name": "magnitude_prune", "sparsity": 0.5}],
        "measure": {"latency": False},
    }


CLI_FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@CLI_FUZZ
@given(model=_MODEL_SECTIONS)
def test_cli_compress_bad_model_section_is_one_error_line(tmp_path_factory, model, capsys):
    path = tmp_path_factory.mktemp("cfg") / "compress.yaml"
    data = {"name": "digits", "options": {"size": 8}}
    path.write_text(yaml.safe_dump(_tiny_compress_config(model, data)))
    assert main(["compress", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "model" in err


@CLI_FUZZ
@given(data=_DATA_SECTIONS)
def test_cli_bad_data_section_is_one_error_line(tmp_path_factory, data, capsys):
    folder = tmp_path_factory.mktemp("cfg")
    torch.manual_seed(0)
    compress = folder / "compress.yaml"
    compress.write_text(yaml.safe_dump(_tiny_compress_config("resnet18", data)))
    search = folder / "search.yaml"
    search.write_text(
        yaml.safe_dump({"space": "mlp", "data": data, "budget": 1, "training": {"epochs": 1}})
    )
    for command in (["compress", str(compress)], ["search", str(search), "--out", str(folder)]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "data" in err
