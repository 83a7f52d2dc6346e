"""Configurable (nasforge._options): plugins record their constructor arguments."""

from __future__ import annotations

import inspect
import pickle

import pytest

import nasforge as nf
from nasforge._options import Configurable


class Plugin(Configurable):
    def __init__(self, size: int, *, rate: float = 0.5, name: str | None = None) -> None:
        self.size = size


class Open(Configurable):
    def __init__(self, first, *rest, flag=False, **extra):
        pass


def test_options_hold_every_argument_by_name_defaults_included():
    assert Plugin(3).options == {"size": 3, "rate": 0.5, "name": None}
    assert Plugin(size=4, rate=0.1).options == {"size": 4, "rate": 0.1, "name": None}


def test_variable_keywords_are_options_and_variable_positionals_are_not():
    assert Open(1, 2, 3, colour="red").options == {"first": 1, "flag": False, "colour": "red"}


def test_options_are_a_copy():
    plugin = Plugin(3)
    plugin.options["size"] = 99
    assert plugin.options["size"] == 3


def test_arguments_init_refuses_leave_the_error_to_init():
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Plugin(3, colour="red")
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        Plugin()


def test_the_signature_of_the_class_is_that_of_init_without_self():
    def make():
        class Made(Configurable):
            def __init__(self, width: int, *, depth: int = 2) -> None:
                pass

        return Made

    made = make()  # made while the test runs, not when the module is imported
    assert str(inspect.signature(made)) == "(width: 'int', *, depth: 'int' = 2) -> 'None'"
    assert list(inspect.signature(Plugin).parameters) == ["size", "rate", "name"]


def test_the_registry_checks_arguments_against_that_signature():
    @nf.register("dataset", "configurable_plugin")
    class Registered(Configurable):
        def __init__(self, *, rows: int = 1) -> None:
            self.rows = rows

    try:
        assert nf.build("dataset", "configurable_plugin", rows=3).options == {"rows": 3}
        with pytest.raises(nf.ConfigError, match=r"Accepted arguments: rows\.$"):
            nf.build("dataset", "configurable_plugin", cols=3)
    finally:
        nf.unregister("dataset", "configurable_plugin")


def test_unpickled_plugins_keep_their_options():
    plugin = pickle.loads(pickle.dumps(Plugin(5, name="x")))
    assert plugin.options == {"size": 5, "rate": 0.5, "name": "x"}
    assert plugin.size == 5
