"""Objectives and constraints (nasforge.nas.objectives): parsing, scoring, checking."""

from __future__ import annotations

import math

import pytest

from nasforge.errors import ConfigError
from nasforge.nas.objectives import (
    Constraint,
    Objectives,
    check_metrics,
    parse_constraints,
    violations,
)


def refusal(call, *args) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args)
    return info.value


def test_one_objective_and_one_mode():
    objectives = Objectives.parse("val_acc", "max")
    assert (objectives.names, objectives.modes) == (("val_acc",), ("max",))
    assert not objectives.multi
    assert objectives.score({"val_acc": 0.75, "loss": 3}) == 0.75
    assert Objectives.parse("loss", "min").score({"loss": 2}) == -2.0
    assert objectives.to_dict() == {"objective": ["val_acc"], "mode": ["max"]}


def test_several_objectives_share_a_mode_or_take_one_each():
    objectives = Objectives.parse(["val_acc", "latency_ms"], ["max", "min"])
    assert objectives.multi
    assert objectives.score({"val_acc": 0.9, "latency_ms": 2}) == (0.9, -2.0)
    assert Objectives.parse(("a", "b"), "min").modes == ("min", "min")
    assert Objectives.parse(["a", "b"], "max").score({"a": 1, "b": 2}) == (1.0, 2.0)
    assert objectives.to_dict() == {"objective": ["val_acc", "latency_ms"], "mode": ["max", "min"]}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_objective_scores_none(bad):
    assert Objectives.parse("acc", "max").score({"acc": bad}) is None
    assert Objectives.parse(["acc", "ms"], "max").score({"acc": 0.5, "ms": bad}) is None


def test_missing_lists_the_objectives_a_result_lacks():
    objectives = Objectives.parse(["acc", "ms", "params"], "max")
    assert objectives.missing({"ms": 1}) == ["acc", "params"]
    assert objectives.missing({"acc": 1, "ms": 1, "params": 1}) == []


@pytest.mark.parametrize(
    ("objective", "mode", "field", "expected", "got"),
    [
        ([], "max", "objective", "a metric name such as 'val_acc', or a list of them", []),
        (3, "max", "objective", "a metric name such as 'val_acc', or a list of them", 3),
        (["acc", ""], "max", "objective", "a metric name such as 'val_acc'", ""),
        (["acc", 2], "max", "objective", "a metric name such as 'val_acc'", 2),
        (("acc", "acc"), "max", "objective", "distinct metric names", ["acc", "acc"]),
        (
            ["a", "b"],
            ["max"],
            "mode",
            "'max', 'min' or a list of 2 of them (one per objective)",
            ["max"],
        ),
        ("a", 1, "mode", "'max', 'min' or a list of 1 of them (one per objective)", 1),
        ("a", "maximum", "mode", "'max' or 'min'", "maximum"),
        (["a", "b"], ["max", "Min"], "mode", "'max' or 'min'", "Min"),
    ],
)
def test_malformed_objectives_and_modes_are_refused(objective, mode, field, expected, got):
    error = refusal(Objectives.parse, objective, mode)
    assert error.field == field
    assert str(error) == f"{field} must be {expected}, but got {got!r}"


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("params <= 100_000", ("params", "<=", 100_000.0)),
        ("  latency_ms<2.5 ", ("latency_ms", "<", 2.5)),
        ("val.f1 >= 0.5", ("val.f1", ">=", 0.5)),
        ("_x > -1e3", ("_x", ">", -1000.0)),
        (("macs", "<", 10), ("macs", "<", 10.0)),
        (["acc", ">", "0.5"], ("acc", ">", 0.5)),
        (("params", "<", "2_500"), ("params", "<", 2500.0)),
    ],
)
def test_constraints_parse_from_text_or_triples(spec, parsed):
    constraint = Constraint.parse(spec)
    assert (constraint.metric, constraint.op, constraint.bound) == parsed
    assert Constraint.parse(constraint) is constraint


@pytest.mark.parametrize(
    "spec",
    [
        "params",
        "params == 3",
        "params <= ",
        "1params <= 3",
        "params <= three",
        "params <= 3 4",
        "params <= nan",
        "params <= inf",
        ("params", "=", 3),
        ("params", "<="),
        (3, "<=", 3),
        ("params", "<=", None),
        ("params", "<=", True),
        ("params", "<=", math.inf),
        ("params", "<=", "1__0"),
        5,
    ],
)
def test_malformed_constraints_are_refused(spec):
    error = refusal(Constraint.parse, spec)
    assert error.field == "constraints"
    assert str(error) == (
        "constraints must be 'metric <= number' (or <, >=, >), e.g. 'params <= 100_000', "
        f"but got {spec!r}"
    )


@pytest.mark.parametrize(
    ("op", "below", "at", "above"),
    [
        ("<=", True, True, False),
        ("<", True, False, False),
        (">=", False, True, True),
        (">", False, False, True),
    ],
)
def test_constraints_compare_with_their_operator(op, below, at, above):
    constraint = Constraint("params", op, 100)
    assert [constraint.holds({"params": v}) for v in (99, 100, 101)] == [below, at, above]
    assert constraint.holds({"macs": 5}) is None


def test_flops_constraints_read_macs_unless_flops_is_measured():
    constraint = Constraint.parse("flops <= 10")
    assert constraint.source({"macs", "params"}) == "macs"
    assert constraint.source({"flops", "macs"}) == "flops"
    assert constraint.holds({"macs": 20}) is False
    assert constraint.holds({"macs": 20, "flops": 5}) is True
    assert Constraint.parse("params <= 1").source({"macs"}) == "params"


def test_only_metrics_known_before_training_are_cheap():
    assert [Constraint(m, "<", 1).cheap for m in ("params", "macs", "flops", "latency_ms")] == [
        True
    ] * 4
    assert not Constraint("val_acc", ">", 0.5).cheap


def test_a_constraint_reads_back_as_text():
    assert str(Constraint.parse("params <= 100_000")) == "params <= 100000"
    assert str(Constraint.parse("latency_ms > 2.5")) == "latency_ms > 2.5"


def test_parse_constraints_takes_none_one_or_a_list():
    assert parse_constraints(None) == ()
    assert parse_constraints("params < 3") == (Constraint("params", "<", 3.0),)
    one = Constraint("acc", ">", 0.5)
    assert parse_constraints(one) == (one,)
    assert parse_constraints(["params < 3", one]) == (Constraint("params", "<", 3.0), one)
    error = refusal(parse_constraints, 3)
    assert (error.field, str(error)) == (
        "constraints",
        "constraints must be a list such as ['params <= 100_000', 'latency_ms <= 5'], but got 3",
    )


def test_violations_lists_broken_constraints_not_unknown_metrics():
    constraints = parse_constraints(["params <= 10", "acc >= 0.5", "ms < 1"])
    assert violations(constraints, {"params": 20, "acc": 0.9}) == ["params <= 10"]
    assert violations(constraints, {"params": 20, "acc": 0.1, "ms": 3}) == [
        "params <= 10",
        "acc >= 0.5",
        "ms < 1",
    ]
    assert violations(constraints, {}) == []


def test_check_metrics_refuses_what_the_evaluator_does_not_measure():
    objectives = Objectives.parse("val_acc", "max")
    check_metrics(None, objectives, parse_constraints("nothing < 1"))  # unknown: not checked
    check_metrics({"val_acc", "macs"}, objectives, parse_constraints("flops < 1"))
    error = refusal(check_metrics, {"val_ac", "params"}, objectives, ())
    assert error.field == "objective"
    assert str(error) == (
        "objective must be one of the evaluator's metrics (params, val_ac), but got 'val_acc'. "
        "HINT: Did you mean 'val_ac'?"
    )
    error = refusal(check_metrics, {"zzz"}, objectives, ())
    assert str(error).endswith("but got 'val_acc'")  # nothing close, no hint
    error = refusal(check_metrics, {"val_acc", "param"}, objectives, parse_constraints("params<1"))
    assert error.field == "constraints"
    assert str(error) == (
        "constraints must be a constraint on one of the evaluator's metrics (param, val_acc), "
        "but got 'params < 1'. HINT: Did you mean 'param'?"
    )
    error = refusal(check_metrics, {"val_acc"}, objectives, parse_constraints("zzz < 1"))
    assert str(error).endswith("but got 'zzz < 1'")
