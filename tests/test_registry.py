import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nasforge as nf
from nasforge import registry


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
