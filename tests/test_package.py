import subprocess
import sys
from importlib import resources

import nasforge as nf


def test_import_is_cheap_and_does_not_load_torch():
    """Cheap means that no heavy dependency loads until a name that needs it is used."""
    heavy = ("torch", "torchvision", "scipy", "matplotlib", "ray")
    code = (
        f"import sys; import nasforge; heavy = {heavy!r}; "
        "print(sorted(m for m in heavy if m in sys.modules), 'nasforge' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]


def test_every_public_name_resolves():
    for name in nf.__all__:
        assert getattr(nf, name) is not None, name
    assert set(nf.__all__) <= set(dir(nf))


def test_unknown_attribute_is_an_attribute_error():
    try:
        nf.Trainr  # noqa: B018
    except AttributeError as exc:
        assert "Trainr" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_package_is_typed():
    assert resources.files("nasforge").joinpath("py.typed").is_file()


def test_errors_share_one_base():
    for error in (
        nf.ConfigError,
        nf.RegistryError,
        nf.MissingDependencyError,
        nf.CheckpointError,
        nf.TrainingDivergedError,
    ):
        assert issubclass(error, nf.NasforgeError)
    message = str(nf.ConfigError.invalid("trainer.epochs", -1, "a positive integer", "try 10"))
    assert message == "trainer.epochs must be a positive integer, but got -1. HINT: try 10"


def test_search_is_the_function_whatever_was_imported_before():
    code = (
        "import nasforge.nas.journal, nasforge.nas.evaluator, inspect, nasforge as nf; "
        "print(inspect.isfunction(nf.search))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
