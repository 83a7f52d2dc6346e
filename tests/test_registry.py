"""The plugin registry (nasforge.registry): registering, looking up, building and
unregistering plugins, which registrations are the same plugin again, what the errors name,
docstring summaries, lazy built-ins and entry points."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nasforge as nf
from nasforge import registry
from nasforge.errors import ConfigError, RegistryError


@pytest.fixture
def scratch_names():
    """Unregister whatever a test registers under these names."""
    names: list[tuple[str, str]] = []
    yield names
    for kind, name in names:
        if name in nf.available(kind):
            nf.unregister(kind, name)


def test_every_kind_is_listed_and_sorted():
    assert set(nf.KINDS) == {
        "space",
        "strategy",
        "evaluator",
        "compressor",
        "executor",
        "scheduler",
        "dataset",
        "tracker",
    }
    for kind in nf.KINDS:
        names = nf.available(kind)
        assert names == sorted(names)


def test_builtin_datasets_are_registered_like_user_plugins():
    assert {"digits", "mnist1d", "synthetic"} <= set(nf.available("dataset"))
    from nasforge.data import datasets

    assert nf.get("dataset", "digits") is datasets.digits


def test_register_get_build_and_unregister(scratch_names):
    scratch_names.append(("strategy", "counting"))

    @nf.register("strategy", "counting")
    class Counting:
        def __init__(self, *, start: int = 0):
            self.start = start

    assert "counting" in nf.available("strategy")
    assert nf.get("strategy", "counting") is Counting
    assert nf.get("strategy", "COUNTING") is Counting  # lookups ignore case
    assert nf.build("strategy", "counting", start=3).start == 3
    nf.unregister("strategy", "counting")
    assert "counting" not in nf.available("strategy")


def test_name_defaults_to_lowercased_object_name(scratch_names):
    scratch_names.append(("scheduler", "myhalving"))

    @nf.register("scheduler")
    def MyHalving():
        return "built"

    assert nf.build("scheduler", "myhalving") == "built"


def test_registering_a_taken_name_raises(scratch_names):
    scratch_names.append(("executor", "twice"))

    @nf.register("executor", "twice")
    class First:
        pass

    with pytest.raises(nf.RegistryError, match="already registered"):

        @nf.register("executor", "twice")
        class Second:
            pass

    with pytest.raises(nf.RegistryError, match="already registered"):
        nf.register("dataset", "digits")(lambda: None)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(nf.RegistryError) as info:
        nf.get("dataset", "digit")
    message = str(info.value)
    assert "unknown dataset 'digit'" in message
    assert "Did you mean 'digits'" in message
    assert "synthetic" in message  # lists what is available


def test_unknown_kind_is_an_error():
    with pytest.raises(nf.RegistryError, match=r"unknown plugin kind 'strategies'.*'strategy'"):
        nf.available("strategies")


def test_invalid_names_are_refused():
    with pytest.raises(nf.RegistryError, match="lower-case identifier"):
        nf.register("strategy", "My Strategy")(object)


def test_build_with_unknown_argument_names_the_accepted_ones():
    with pytest.raises(nf.ConfigError) as info:
        nf.build("dataset", "synthetic", colour="red")
    assert "colour" in str(info.value)
    assert "num_samples" in str(info.value)


def test_available_filters_with_wildcards():
    assert nf.available("dataset", "mn*") == ["mnist1d"]


def test_entry_point_plugin_is_found_and_usable(tmp_path):
    """Install the plugin package under tests/ and use its strategy by name."""
    target = tmp_path / "site"
    package = Path(__file__).parent / "plugin_pkg"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--target", str(target), str(package),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    script = textwrap.dedent(
        """
        import nasforge as nf
        assert "example_plugin" in nf.available("strategy"), nf.available("strategy")
        strategy = nf.build("strategy", "example_plugin", options=["a", "b"], seed=1)
        picks = [strategy.ask() for _ in range(20)]
        assert set(picks) == {"a", "b"}, picks
        print("ok")
        """
    )
    env = {"PYTHONPATH": str(target), "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_broken_plugin_is_logged_not_fatal(monkeypatch, caplog):
    class BrokenEntryPoint:
        name, value = "broken", "nowhere:nothing"

        def load(self):
            raise ImportError("boom")

    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: [BrokenEntryPoint()])
    with caplog.at_level("WARNING", logger="nasforge.registry"):
        assert "digits" in nf.available("dataset")
    assert "could not load nasforge plugin 'broken'" in caplog.text


def test_plugins_may_take_arguments_called_kind_or_name(scratch_names):
    scratch_names.append(("dataset", "named"))

    @nf.register("dataset", "named")
    def named(*, name: str = "x", kind: str = "y"):
        return name, kind

    assert nf.build("dataset", "named", name="a", kind="b") == ("a", "b")


# --- more of the contract: same plugin again, messages, built-ins ---------------------------
def _make_plugin():
    class Plugin:
        """Counts things.

        More details.
        """

    return Plugin


def test_registering_the_same_definition_again_is_harmless(scratch_names):
    scratch_names.append(("dataset", "again"))
    first, second = _make_plugin(), _make_plugin()  # a module imported twice
    assert first is not second and first.__qualname__ == second.__qualname__
    nf.register("dataset", "again")(first)
    assert nf.register("dataset", "again")(first) is first
    nf.register("dataset", "again")(second)
    assert nf.get("dataset", "again") is second  # the newer definition wins


def test_a_different_definition_under_a_taken_name_is_refused(scratch_names):
    scratch_names.append(("dataset", "taken"))
    first = _make_plugin()
    nf.register("dataset", "taken")(first)
    other_module = type("Plugin", (), {"__module__": "elsewhere", "__qualname__": "Plugin"})
    other_module.__qualname__ = first.__qualname__
    other_name = type("Other", (), {"__module__": first.__module__})
    for other in (other_module, other_name):
        with pytest.raises(RegistryError) as info:
            nf.register("dataset", "taken")(other)
        assert str(info.value) == (
            f"dataset 'taken' is already registered (by {__name__}."
            "_make_plugin.<locals>.Plugin). HINT: pick another name, or "
            "unregister('dataset', 'taken') first."
        )
    assert nf.get("dataset", "taken") is first


def test_partials_are_plugins_and_two_partials_are_different_ones(scratch_names):
    scratch_names.append(("dataset", "small_synthetic"))
    synthetic = nf.get("dataset", "synthetic")
    small = functools.partial(synthetic, num_samples=30)
    nf.register("dataset", "small_synthetic")(small)
    nf.register("dataset", "small_synthetic")(small)  # the same object again
    assert nf.get("dataset", "small_synthetic") is small
    with pytest.raises(RegistryError) as info:
        nf.register("dataset", "small_synthetic")(functools.partial(synthetic, num_samples=40))
    assert f"(by functools.{small!r})" in str(info.value)  # no __qualname__: its repr
    assert nf.get("dataset", "small_synthetic") is small


def test_plugins_without_a_module_are_described_by_what_they_have(scratch_names):
    scratch_names.append(("dataset", "moduleless"))
    plugin = (5).__add__  # a method-wrapper: no __module__, a __qualname__
    nf.register("dataset", "moduleless")(plugin)
    with pytest.raises(RegistryError, match=r"\(by \?\.int\.__add__\)"):
        nf.register("dataset", "moduleless")((6).__add__)  # same qualname, another object


def test_names_default_to_the_lowercased_name_and_must_exist(scratch_names):
    scratch_names.append(("dataset", "upper"))
    assert nf.register("dataset")(str.upper) is str.upper
    assert nf.get("dataset", "upper") is str.upper
    with pytest.raises(RegistryError, match=r"lower-case identifier.*got ''"):
        nf.register("dataset")(functools.partial(print))  # a partial has no __name__


@pytest.mark.parametrize("name", ["9lives", "my-data", "_hidden", "", "a b"])
def test_names_are_lower_case_identifiers(name):
    with pytest.raises(RegistryError) as info:
        nf.register("dataset", name)(_make_plugin())
    assert str(info.value) == (
        f"plugin name must be a lower-case identifier like 'my_strategy', got {name!r}"
    )


def test_summary_is_the_first_line_of_the_docstring(scratch_names):
    scratch_names += [("dataset", "documented"), ("dataset", "undocumented")]
    nf.register("dataset", "documented")(_make_plugin())
    nf.register("dataset", "undocumented")(lambda: None)
    assert registry.summary("dataset", "documented") == "Counts things."
    assert registry.summary("dataset", "undocumented") == ""
    assert registry.summary("scheduler", "none") == (
        "No multi-fidelity: every trial runs once at the evaluator's full budget."
    )


def test_name_of_finds_the_registered_name(scratch_names):
    scratch_names.append(("dataset", "findme"))
    plugin = nf.register("dataset", "findme")(_make_plugin())
    assert registry.name_of("dataset", plugin) == "findme"
    assert registry.name_of("dataset", _make_plugin()) is None
    assert registry.name_of("scheduler", nf.get("scheduler", "hyperband")) == "hyperband"


def test_unknown_kinds_and_names_are_refused_everywhere():
    for call in (
        lambda: nf.get("strategies", "x"),
        lambda: registry.name_of("strategies", object),
        lambda: nf.unregister("strategies", "x"),
        lambda: nf.register("strategies", "x"),
    ):
        with pytest.raises(RegistryError) as info:
            call()
        assert str(info.value).startswith(
            "unknown plugin kind 'strategies'; expected one of compressor, dataset, evaluator, "
            "executor, scheduler, space, strategy, tracker. Did you mean 'strategy'?"
        )
    with pytest.raises(RegistryError) as info:
        nf.unregister("dataset", "nothing_like_it")
    # the list is whatever is registered now (built-ins, entry points, other tests' plugins),
    # sorted and complete
    known = nf.available("dataset")
    assert {"csv", "digits", "mnist1d", "synthetic"} <= set(known)
    assert known == sorted(known)
    assert str(info.value).startswith(
        f"unknown dataset 'nothing_like_it'; available: {', '.join(known)}."
    )
    with pytest.raises(RegistryError, match=r"unknown dataset 3; available"):
        nf.get("dataset", 3)


def test_lookups_ignore_case_but_unregister_needs_the_name(scratch_names):
    scratch_names.append(("dataset", "casey"))
    plugin = nf.register("dataset", "casey")(_make_plugin())
    assert nf.get("dataset", "CaSeY") is plugin
    assert nf.available("dataset", "CAS*") == ["casey"]
    nf.unregister("dataset", "Casey")
    assert "casey" not in nf.available("dataset")


def test_an_empty_kind_lists_none(monkeypatch):
    monkeypatch.setitem(registry._entries, "scheduler", {})
    with pytest.raises(RegistryError, match=r"^unknown scheduler 'x'; available: \(none\)\.$"):
        nf.get("scheduler", "x")


def test_build_names_the_accepted_arguments(scratch_names):
    scratch_names += [("dataset", "takes_two"), ("dataset", "takes_none")]

    @nf.register("dataset", "takes_two")
    def takes_two(a, *, b=1, **extra):
        return a, b, extra

    nf.register("dataset", "takes_none")(lambda: "x")
    assert nf.build("dataset", "takes_two", a=1, c=3) == (1, 1, {"c": 3})
    with pytest.raises(ConfigError) as info:
        nf.build("dataset", "takes_two", b=2)
    assert info.value.field == "takes_two"
    assert str(info.value) == (
        "cannot build dataset 'takes_two': missing a required argument: 'a'. "
        "Accepted arguments: a, b."
    )
    with pytest.raises(ConfigError, match=r"Accepted arguments: \(none\)\.$"):
        nf.build("dataset", "takes_none", x=1)
    assert nf.build("dataset", "TAKES_NONE") == "x"


def test_plugins_without_a_signature_are_called_as_they_are(scratch_names, monkeypatch):
    scratch_names.append(("dataset", "opaque"))

    class Opaque:
        def __call__(self, **options):
            return options

    plugin = nf.register("dataset", "opaque")(Opaque())

    def no_signature(obj):
        raise ValueError("no signature found")

    monkeypatch.setattr(registry.inspect, "signature", no_signature)
    assert nf.build("dataset", "opaque", anything=1) == {"anything": 1}
    assert nf.get("dataset", "opaque") is plugin


@pytest.fixture
def fake_builtins(tmp_path, monkeypatch):
    """The built-in schedulers replaced by two modules that are not imported yet."""
    for name, plugin in (("fake_builtin_a", "alpha"), ("fake_builtin_b", "beta")):
        (tmp_path / f"{name}.py").write_text(
            textwrap.dedent(
                f"""
                from nasforge.registry import register

                @register("scheduler", "{plugin}")
                class Plugin:
                    '''A built-in.'''
                """
            )
        )
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        registry._BUILTIN_MODULES, "scheduler", ("fake_builtin_a", "fake_builtin_b")
    )
    monkeypatch.setitem(registry._entries, "scheduler", {})
    monkeypatch.setattr(registry, "_builtins_loaded", {"dataset"})
    yield
    for name in ("fake_builtin_a", "fake_builtin_b"):
        sys.modules.pop(name, None)


def test_builtins_are_imported_on_the_first_lookup_of_their_kind(fake_builtins):
    assert "fake_builtin_a" not in sys.modules
    assert nf.available("scheduler") == ["alpha", "beta"]
    assert {"fake_builtin_a", "fake_builtin_b"} <= set(sys.modules)


def test_importing_one_builtin_module_imports_no_other(fake_builtins):
    import importlib

    importlib.import_module("fake_builtin_a")
    assert "fake_builtin_b" not in sys.modules
    assert list(registry._entries["scheduler"]) == ["alpha"]


def test_builtins_own_their_names_whatever_registers_first(fake_builtins):
    class Alpha:
        pass

    with pytest.raises(RegistryError, match=r"'alpha' is already registered \(by fake_builtin_a"):
        nf.register("scheduler", "alpha")(Alpha)
    assert nf.get("scheduler", "alpha").__module__ == "fake_builtin_a"


def test_entry_points_are_loaded_once_on_the_first_lookup(monkeypatch):
    loaded = []

    class EntryPoint:
        name, value = "counted", "somewhere:plugin"

        def load(self):
            loaded.append(self.name)

    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(
        registry.metadata,
        "entry_points",
        lambda group: [EntryPoint()] if group == "nasforge.plugins" else [],
    )
    nf.available("dataset")
    nf.get("dataset", "digits")
    assert loaded == ["counted"]
