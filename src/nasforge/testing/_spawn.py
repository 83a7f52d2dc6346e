"""Run a function in a fresh spawned process: the "another process" check of every suite."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import multiprocessing
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any, TypeVar

__all__ = ["one_torch_thread", "run_in_subprocess"]

T = TypeVar("T")


def run_in_subprocess(fn: Callable[..., T], *args: Any, timeout: float = 600.0) -> T:
    """``fn(*args)`` run in a new process started with ``spawn``; its return value.

    ``fn`` (a top-level function) and ``args`` are pickled here, so a pickling error shows
    up in this process, and unpickled in a fresh interpreter that shares nothing with this
    one but ``sys.path``: a plugin survives the trip only if its pickle is complete. Classes
    and functions defined in a test module (even one pytest imported with
    ``--import-mode=importlib``, or any module loaded from a file under a name that is not
    importable) are found again from that module's file. PyTorch runs on one thread in the
    child. An exception in ``fn`` is raised here, with the child's traceback as a note.
    Each call costs a new interpreter (about a second, more when the arguments need
    PyTorch), so call it once per plugin with everything to check.

    Example::

        keys = run_in_subprocess(sample_keys, pickle.dumps(space), 10)
    """
    payload = pickle.dumps((fn, args))
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child,
        args=(sender, payload, _module_files()),
        name=f"nasforge-testing-{getattr(fn, '__name__', 'task')}",
    )
    process.start()
    sender.close()  # the child holds the only sending end now
    try:
        if not receiver.poll(timeout):
            raise TimeoutError(
                f"{_describe(fn)} did not finish within {timeout:g} s in the spawned process"
            )
        try:
            kind, data, text = receiver.recv()
        except EOFError:
            process.join()
            raise RuntimeError(
                f"the spawned process running {_describe(fn)} died with exit code "
                f"{process.exitcode} before it answered"
            ) from None
    finally:
        receiver.close()
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
            process.join()
    if kind == "ok":
        return pickle.loads(data)  # type: ignore[no-any-return]
    try:
        error = pickle.loads(data)
    except Exception:  # an exception type that does not unpickle
        error = None
    if isinstance(error, BaseException):
        raise error
    raise RuntimeError(f"{_describe(fn)} failed in the spawned process:\n{text}")


def _describe(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _module_files() -> dict[str, str]:
    """Source files of this process's modules, so that the child can load a module that is
    not importable by its name (a test module imported by pytest from its path)."""
    files = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py") and not name.startswith("__"):
            files[name] = path
    return files


def _child(connection: Connection, payload: bytes, modules: Mapping[str, str]) -> None:
    """Runs in the spawned process: unpickle, call, answer ``(kind, pickled, traceback)``."""
    os.environ["OMP_NUM_THREADS"] = "1"  # read by PyTorch when it is imported
    sys.meta_path.append(_ParentModules(modules))
    try:
        fn, args = pickle.loads(payload)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        answer = ("ok", pickle.dumps(fn(*args)), "")
    except BaseException as exc:  # everything goes back, even SystemExit
        text = traceback.format_exc()
        exc.add_note(f"raised in the spawned process:\n{text}")
        try:
            data = pickle.dumps(exc)
        except Exception:
            data = b""
        answer = ("error", data, text)
    try:
        connection.send(answer)
    finally:
        connection.close()


class _ParentModules(importlib.abc.MetaPathFinder):
    """Finds, after every other finder failed, the modules the parent loaded from a file
    under a name that ``sys.path`` does not resolve (and their parent packages)."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = dict(files)
        self.packages = {
            name.rsplit(".", i)[0] for name in self.files for i in range(1, name.count(".") + 1)
        }

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is not None and os.path.exists(file):
            locations = [os.path.dirname(file)] if file.endswith("__init__.py") else None
            return importlib.util.spec_from_file_location(
                fullname, file, submodule_search_locations=locations
            )
        if fullname in self.packages:  # a parent with no file of its own: a namespace
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = []
            return spec
        return None


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread inside the block (if it is imported), as in the spawned
    process: float sums may round differently with another number of threads."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
