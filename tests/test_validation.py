"""nasforge.validation: the one set of option checks, and the messages they give.

A refusal is a ConfigError whose ``field`` is the option and whose message reads
"<field> must be <expected>, but got <value>" (plus a HINT): these texts are part of the
contract, since every plugin and config loader reports bad options through them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.validation import (
    check_bool,
    check_callable,
    check_choice,
    check_int,
    check_int_list,
    check_number,
    check_probability,
    check_sequence,
    check_str,
    check_str_list,
    is_int,
    is_number,
)


def refusal(call, *args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("value", [0, -3, 7, np.int64(5), np.uint8(2)])
def test_integers_python_or_numpy_are_integers(value):
    assert is_int(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, "1", None, [1]])
def test_booleans_floats_and_strings_are_not_integers(value):
    assert not is_int(value)


@pytest.mark.parametrize("value", [0, -2, 0.5, 1e300, np.float32(0.25), np.int64(3)])
def test_finite_reals_are_numbers(value):
    assert is_number(value)


@pytest.mark.parametrize(
    "value", [True, np.bool_(False), math.nan, math.inf, -math.inf, "1.0", None, 1j]
)
def test_booleans_strings_and_non_finite_values_are_not_numbers(value):
    assert not is_number(value)


def test_check_int_returns_a_python_int_and_accepts_its_bounds():
    value = check_int(np.int64(4), "n", low=4, high=4)
    assert value == 4 and type(value) is int
    assert check_int(-7, "n") == -7
    assert check_int(None, "n", optional=True) is None


@pytest.mark.parametrize(
    ("value", "bounds", "message"),
    [
        (0, {"low": 1}, "epochs must be a positive integer, but got 0"),
        (-1, {"low": 0}, "epochs must be a non-negative integer, but got -1"),
        (1, {"low": 2}, "epochs must be an integer >= 2, but got 1"),
        (4, {"high": 3}, "epochs must be an integer <= 3, but got 4"),
        (9, {"low": 1, "high": 8}, "epochs must be an integer in [1, 8], but got 9"),
        (0, {"low": 1, "high": 8}, "epochs must be an integer in [1, 8], but got 0"),
        (2.0, {}, "epochs must be an integer, but got 2.0"),
        (True, {"low": 1}, "epochs must be a positive integer, but got True"),
        ("3", {"low": 0}, "epochs must be a non-negative integer, but got '3'"),
        (None, {}, "epochs must be an integer, but got None"),
    ],
)
def test_check_int_says_what_was_expected_and_what_came(value, bounds, message):
    error = refusal(check_int, value, "epochs", **bounds)
    assert str(error) == message
    assert error.field == "epochs"


def test_check_int_adds_optional_and_the_hint_to_the_message():
    error = refusal(check_int, 0, "workers", low=1, optional=True, hint="use 1 for serial")
    assert str(error) == (
        "workers must be a positive integer or None, but got 0. HINT: use 1 for serial"
    )


def test_check_number_returns_a_float_within_closed_bounds():
    assert check_number(0, "x", low=0, high=1) == 0.0
    assert check_number(1, "x", low=0, high=1) == 1.0
    assert type(check_number(np.float32(0.5), "x")) is float
    assert check_number(-1e9, "x") == -1e9
    assert check_number(None, "x", optional=True) is None


@pytest.mark.parametrize(
    ("value", "bounds"),
    [
        (0, {"low": 0, "low_open": True}),
        (1, {"high": 1, "high_open": True}),
        (-0.1, {"low": 0}),
        (1.1, {"high": 1}),
    ],
)
def test_check_number_refuses_values_on_open_ends_and_outside(value, bounds):
    refusal(check_number, value, "x", **bounds)


def test_check_number_accepts_values_just_inside_open_ends():
    assert check_number(1e-9, "x", low=0, low_open=True) == 1e-9
    assert check_number(0.999, "x", high=1, high_open=True) == 0.999


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"low": 0, "low_open": True}, "a positive number"),
        ({"low": 0}, "a number >= 0"),
        ({"low": 0.5, "low_open": True}, "a number > 0.5"),
        ({"low": 0.5, "low_open": True, "high": 2}, "a number in (0.5, 2]"),
        ({"low": 0, "high": 1, "high_open": True}, "a number in [0, 1)"),
        ({"low": 0, "high": 1}, "a number in [0, 1]"),
        ({"high": 1, "high_open": True}, "a number < 1"),
        ({"high": 1e6}, "a number <= 1e+06"),
        ({}, "a number"),
    ],
)
def test_check_number_describes_its_bounds(bounds, expected):
    error = refusal(check_number, "many", "lr", **bounds)
    assert str(error) == f"lr must be {expected}, but got 'many'"
    assert error.field == "lr"


@pytest.mark.parametrize("value", [math.nan, math.inf, True])
def test_check_number_refuses_nan_infinity_and_booleans(value):
    refusal(check_number, value, "lr")


def test_check_number_adds_optional_and_the_hint():
    error = refusal(check_number, -1, "clip", low=0, low_open=True, optional=True, hint="h")
    assert str(error) == "clip must be a positive number or None, but got -1. HINT: h"


def test_check_probability_takes_zero_to_one_inclusive():
    assert check_probability(0, "p") == 0.0 and type(check_probability(1, "p")) is float
    assert check_probability(None, "p", optional=True) is None
    for bad in (-0.01, 1.01, math.nan, True, "0.5"):
        error = refusal(check_probability, bad, "p")
        assert str(error) == f"p must be a probability in [0, 1], but got {bad!r}"
    error = refusal(check_probability, 2, "p", optional=True)
    assert str(error) == "p must be a probability in [0, 1] or None, but got 2"


def test_check_bool_takes_only_true_and_false():
    assert check_bool(True, "log") is True and check_bool(False, "log") is False
    for bad in (1, 0, "true", None, np.bool_(True)):
        error = refusal(check_bool, bad, "log")
        assert str(error) == f"log must be True or False, but got {bad!r}"


def test_check_str_takes_non_empty_strings():
    assert check_str("a", "name") == "a"
    assert check_str(None, "name", optional=True) is None
    assert str(refusal(check_str, "", "name")) == "name must be a non-empty string, but got ''"
    assert str(refusal(check_str, 3, "name", optional=True)) == (
        "name must be a non-empty string or None, but got 3"
    )
    refusal(check_str, None, "name")


def test_check_choice_matches_any_case_and_returns_the_choice():
    assert check_choice("COSINE", "schedule", ("none", "Cosine")) == "Cosine"
    assert check_choice("none", "schedule", ("none", "Cosine")) == "none"
    assert check_choice(None, "schedule", ("a",), optional=True) is None


def test_check_choice_lists_the_choices_and_suggests_a_close_one():
    error = refusal(check_choice, "cosin", "lr_schedule", ("none", "cosine"))
    assert str(error) == (
        "lr_schedule must be one of 'none', 'cosine', but got 'cosin'. HINT: Did you mean 'cosine'?"
    )
    assert error.field == "lr_schedule"
    error = refusal(check_choice, "zzz", "mode", ("max", "min"), optional=True)
    assert str(error) == "mode must be one of 'max', 'min' or None, but got 'zzz'"
    error = refusal(check_choice, 3, "mode", ("max", "min"))
    assert str(error) == "mode must be one of 'max', 'min', but got 3"  # no suggestion
    error = refusal(check_choice, "mx", "mode", ("max", "min"), hint="see the docs")
    assert str(error).endswith("but got 'mx'. HINT: see the docs")
    refusal(check_choice, None, "mode", ("max", "min"))


def test_check_callable_takes_functions_and_classes_but_not_strings():
    assert check_callable(len, "loss", "a callable") is len
    assert check_callable(dict, "loss", "a callable") is dict
    assert check_callable(None, "loss", "a callable", optional=True) is None
    for bad in ("len", b"len", 3, None):
        error = refusal(check_callable, bad, "loss", "a loss function")
        assert str(error) == f"loss must be a loss function, but got {bad!r}"


def test_check_sequence_checks_each_element_under_its_own_name():
    assert check_sequence((1, 2), "sizes", check_int) == [1, 2]
    error = refusal(check_sequence, [1, "b"], "sizes", check_int)
    assert error.field == "sizes[1]"
    assert str(error) == "sizes[1] must be an integer, but got 'b'"


def test_check_sequence_refuses_strings_short_lists_and_repeats():
    assert str(refusal(check_sequence, "ab", "names", check_str)) == (
        "names must be a list, but got 'ab'"
    )
    refusal(check_sequence, b"ab", "names", check_str)
    refusal(check_sequence, {"a": 1}, "names", check_str)
    error = refusal(check_sequence, [], "names", check_str)
    assert str(error) == "names must be a list of at least 1 element(s), but got []"
    error = refusal(check_sequence, ["a"], "names", check_str, min_length=2, expected="names")
    assert str(error) == "names must be names of at least 2 element(s), but got ['a']"
    assert check_sequence([], "names", check_str, min_length=0) == []
    assert check_sequence(["a", "a"], "names", check_str) == ["a", "a"]
    error = refusal(check_sequence, ["a", "a"], "names", check_str, distinct=True)
    assert str(error) == "names must be a list without repeated elements, but got ['a', 'a']"


def test_check_int_list_describes_the_elements():
    assert check_int_list([3, 1], "widths", low=1) == [3, 1]
    cases = [
        ({"low": 1}, "a list of positive integers"),
        ({"low": 1, "distinct": True}, "a list of distinct positive integers"),
        ({"low": 0}, "a list of integers >= 0"),
        ({}, "a list of integers"),
    ]
    for options, expected in cases:
        error = refusal(check_int_list, "8", "widths", **options)
        assert str(error) == f"widths must be {expected}, but got '8'"
    assert refusal(check_int_list, [1, 0], "widths", low=1).field == "widths[1]"
    refusal(check_int_list, [2, 2], "widths", low=1, distinct=True)
    assert check_int_list([-2, -2], "widths") == [-2, -2]


def test_check_str_list_takes_names_and_refuses_a_lone_string():
    assert check_str_list([], "layers") == []
    assert check_str_list(("a", "b"), "layers") == ["a", "b"]
    assert str(refusal(check_str_list, "conv1", "layers")) == (
        "layers must be a list of names, but got 'conv1'"
    )
    assert refusal(check_str_list, ["a", ""], "layers").field == "layers[1]"
    error = refusal(check_str_list, ["a"], "layers", min_length=2)
    assert str(error) == "layers must be a list of names of at least 2 element(s), but got ['a']"
