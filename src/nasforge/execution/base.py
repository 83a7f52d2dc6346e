"""The executor contract: submit tasks, wait for the next ones to finish.

An executor runs ``fn(*args)`` for each submitted task and hands back a
:class:`TaskResult` per task as tasks finish, in completion order. A task that raises,
runs out of memory, dies, or exceeds the executor's per-task ``timeout`` still produces a
result — with its :class:`Failure` kind and a message — so one bad trial never stops the
caller. Executors never decide what to run: the search loop keeps at most
:attr:`Executor.workers` tasks in flight, asking the strategy for one candidate per free
worker, and collects results with :meth:`Executor.wait`.
"""

from __future__ import annotations

import enum
import os
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nasforge._options import Configurable
from nasforge.validation import check_int, check_number


class Failure(enum.Enum):
    """Why a task produced no value."""

    EXCEPTION = "exception"
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"
    CRASHED = "crashed"  # the worker died (a signal, a segfault, the OOM killer)


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task: its ``value``, or a ``failure`` kind and ``error`` text."""

    task_id: int
    value: Any = None
    failure: Failure | None = None
    error: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None


class Executor(Configurable, ABC):
    """Runs tasks; ``workers`` of them at a time.

    Subclasses implement :meth:`submit`, :meth:`wait`, :meth:`shutdown` and
    :attr:`running`. An executor pickles as its constructor options (:attr:`options`): the
    copy is a fresh executor with the same settings, without the tasks or workers of the
    original.
    """

    def __init__(self, *, workers: int = 1, timeout: float | None = None) -> None:
        self.workers = check_int(workers, "executor.workers", low=1)
        self.timeout = check_number(
            timeout, "executor.timeout", low=0, low_open=True, optional=True
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.options))

    @property
    @abstractmethod
    def running(self) -> int:
        """Tasks submitted and not yet returned by :meth:`wait`."""

    @property
    def free(self) -> int:
        """How many more tasks can start now."""
        return max(0, self.workers - self.running)

    @abstractmethod
    def submit(self, task_id: int, fn: Callable[..., Any], *args: Any) -> None:
        """Start ``fn(*args)`` (or queue it, for the serial executor)."""

    @abstractmethod
    def wait(self) -> list[TaskResult]:
        """Block until at least one running task finishes; return all that have."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop every running task and release workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _rebuild(cls: type[Executor], options: dict[str, Any]) -> Executor:
    return cls(**options)


def run_task(fn: Callable[..., Any], threads: int, args: tuple[Any, ...]) -> tuple[str, Any]:
    """Run one task inside a worker; the answer is ``("ok", value)`` or
    ``("error", (failure kind, message))``, so failures travel back as data.

    PyTorch in the worker uses ``threads`` intra-op threads, so that parallel workers do
    not oversubscribe the cores: set now if torch is loaded, and through the environment
    (read when torch is first imported) if the task imports it itself."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        return "ok", fn(*args)
    except BaseException as exc:  # a worker reports everything, even SystemExit
        failure, message = describe_exception(exc)
        return "error", (failure.value, message)


def result_from_answer(task_id: int, answer: tuple[str, Any], duration: float) -> TaskResult:
    """Turn a worker's :func:`run_task` answer back into a :class:`TaskResult`."""
    kind, payload = answer
    if kind == "ok":
        return TaskResult(task_id, value=payload, duration=duration)
    failure, message = payload
    return TaskResult(task_id, failure=Failure(failure), error=message, duration=duration)


def seconds_to_deadline(timeout: float | None, started: list[float]) -> float | None:
    """How long to wait before the earliest running task is due (None: no timeout)."""
    if timeout is None or not started:
        return None
    return max(0.0, min(started) + timeout - time.perf_counter())


def timed_out(task_id: int, timeout: float, started: float, what: str) -> TaskResult:
    """The result of a task stopped for exceeding ``timeout``; ``what`` says how."""
    return TaskResult(
        task_id,
        failure=Failure.TIMEOUT,
        error=f"the trial exceeded its timeout of {timeout:g} s and {what}",
        duration=time.perf_counter() - started,
    )


def describe_exception(exc: BaseException) -> tuple[Failure, str]:
    """Classify an exception raised by a task and format it with its traceback."""
    message = "".join(traceback.format_exception(exc)).rstrip()
    out_of_memory = isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )
    return (Failure.OUT_OF_MEMORY if out_of_memory else Failure.EXCEPTION), message
