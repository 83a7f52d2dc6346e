"""Run the documentation as tests, with Sybil.

- Every ```python block of README.md and docs/*.md. The blocks of one document share one
  namespace and run in order, as a reader would run them, in a fresh temporary directory
  where ``nb201_cifar10.csv`` links to the NAS-Bench-201 table, so that the files the docs
  write (trials.csv, search.jsonl, checkpoints...) never land in the repository. Plugins a
  document registers or replaces are put back after it. In the Markdown,
  ``<!-- skip: next "reason" -->`` skips the next block and
  ``<!-- invisible-code-block: python ... -->`` sets up what a block takes for granted;
  ``small_dataset(name, n)`` there shrinks a dataset for the rest of the document.
- Every ``>>>`` example in the docstrings of src/nasforge, as doctests.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.document import PythonDocStringDocument
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser

ROOT = Path(__file__).resolve().parent
NB201_CSV = ROOT.parent / "shared" / "data" / "nb201" / "nb201_cifar10.csv"


@pytest.fixture(scope="module")
def doc_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Per document: a temporary working directory, one torch thread, the registry kept."""
    if NB201_CSV.name in request.path.read_text() and not NB201_CSV.exists():
        pytest.skip(f"NB201 table not available at {NB201_CSV}")
    import matplotlib
    import torch

    import nasforge as nf

    matplotlib.use("Agg")
    path = tmp_path_factory.mktemp("doc")
    (path / NB201_CSV.name).symlink_to(NB201_CSV)
    plugins = {kind: {name: nf.get(kind, name) for name in nf.available(kind)} for kind in nf.KINDS}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cwd = os.getcwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
        for kind, before in plugins.items():
            for name in nf.available(kind):
                if name not in before or nf.get(kind, name) is not before[name]:
                    nf.unregister(kind, name)
            for name, plugin in before.items():
                if name not in nf.available(kind):
                    nf.register(kind, name)(plugin)
        import matplotlib.pyplot as plt

        plt.close("all")


@pytest.fixture(scope="module")
def small_dataset(doc_dir: Path) -> Callable[[str, int], None]:
    """``small_dataset(name, n)``: until the document ends, the registered dataset ``name``
    has about ``n`` samples (``num_samples=n`` if it takes that option, else every k-th
    sample of each split), so that the searches of the docs train in seconds."""
    import nasforge as nf

    def shrink(name: str, n: int) -> None:
        full = nf.get("dataset", name)

        @functools.wraps(full)
        def small(**options):
            if "num_samples" in inspect.signature(full).parameters:
                options.setdefault("num_samples", n)
            bundle = full(**options)
            splits = {s: getattr(bundle, s) for s in ("train", "val", "test")}
            step = max(1, sum(len(d) for d in splits.values() if d is not None) // n)
            return dataclasses.replace(
                bundle,
                **{
                    s: None if d is None else type(d)(*(t[::step] for t in d.tensors))
                    for s, d in splits.items()
                },
            )

        nf.unregister("dataset", name)
        nf.register("dataset", name)(small)

    return shrink


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A skipped block is reported at its place in the document, not inside unittest."""
    outcome = yield
    report = outcome.get_result()
    example = getattr(item, "example", None)
    if example is not None and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (report.location[0], example.line, report.longrepr[2])


pytest_collect_file = (
    Sybil(
        parsers=[PythonCodeBlockParser(), SkipParser()],
        patterns=["README.md", "docs/*.md"],
        fixtures=["doc_dir", "small_dataset"],
        path=".",
    )
    + Sybil(
        parsers=[DocTestParser()],
        patterns=["*.py"],
        document_types={".py": PythonDocStringDocument},
        path="src/nasforge",
    )
).pytest()
