"""The package's shape: layers that import one way only (docs/architecture.md draws
them), and functions short enough to read as named steps.

Every ``import`` in ``src/nasforge`` is checked, those inside functions and
``if TYPE_CHECKING:`` blocks included: a module may import from its own layer or a lower
one, never from a higher one. The registry's table of built-in modules and the deprecated
aliases name modules by string and are imported on first use; they are not imports of
the module that holds them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "nasforge._version",
            "nasforge._deprecated",
            "nasforge._io",
            "nasforge._lazy",
            "nasforge._options",
            "nasforge._progress",
            "nasforge._seed",
            "nasforge.config",
            "nasforge.errors",
            "nasforge.registry",
            "nasforge.validation",
        ),
    ),
    (
        "data, space, measure",
        (
            "nasforge.data",
            "nasforge.ensemble",
            "nasforge.export",
            "nasforge.measure",
            "nasforge.pareto",
            "nasforge.space",
        ),
    ),
    ("train", ("nasforge.train", "nasforge.oneshot")),
    ("strategy", ("nasforge.strategy",)),
    ("execution", ("nasforge.execution",)),
    ("search", ("nasforge.nas",)),
    ("compress", ("nasforge.compress",)),
    ("evaluators", ("nasforge.evaluators",)),
    ("facade", ("nasforge", "nasforge.cli", "nasforge.testing", "nasforge.trainer")),
]


def layer_of(module: str) -> int:
    best, index = "", -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, index = prefix, i
    if index < 0:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return index


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "nasforge").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(tree: ast.AST, known: dict[str, Path]) -> list[tuple[int, str]]:
    """Every nasforge module ``tree`` imports, anywhere in it, with the line number."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("nasforge")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("nasforge"):
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                out.append((node.lineno, submodule if submodule in known else node.module))
    return out


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_imports_run_one_way_only():
    known = modules()
    violations = []
    for name, path in sorted(known.items()):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, target in imported(tree, known):
            if layer_of(target) > layer_of(name):
                violations.append(
                    f"{path.relative_to(SRC)}:{line}: {name} ({LAYERS[layer_of(name)][0]}) "
                    f"imports {target} ({LAYERS[layer_of(target)][0]})"
                )
    assert not violations, "imports from a higher layer:\n" + "\n".join(violations)


def test_the_checker_sees_function_local_and_type_checking_imports():
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from nasforge.trainer import Trainer\n"
        "def f():\n    import nasforge.cli\n    from nasforge import registry\n"
    )
    found = {target for _, target in imported(ast.parse(code), modules())}
    assert found == {"nasforge.trainer", "nasforge.cli", "nasforge.registry"}
    assert layer_of("nasforge.trainer") > layer_of("nasforge.train.engine")


@pytest.mark.parametrize("kind", ["strategy", "space", "scheduler", "dataset"])
def test_listing_plugins_loads_no_loop_journal_or_executor(kind):
    """``nf.available`` imports only the modules that define the plugins listed."""
    code = (
        "import sys, nasforge as nf\n"
        f"assert nf.available({kind!r})\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    for heavy in ("nasforge.nas.loop", "nasforge.nas.journal", "nasforge.execution"):
        assert not any(m == heavy or m.startswith(heavy + ".") for m in loaded), heavy
    if kind in ("strategy", "space"):
        assert "torch" not in loaded


def test_no_function_is_over_60_lines():
    """Long functions hide their steps; each reads as a handful of named ones instead."""
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.end_lineno - first + 1 > 60:
                    long.append(f"{name}.{node.name}: {node.end_lineno - first + 1} lines")
    assert not long, long
