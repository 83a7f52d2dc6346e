"""Each task in its own worker process: isolated memory, crashes and timeouts."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from nasforge.errors import ConfigError
from nasforge.execution.base import (
    Executor,
    Failure,
    TaskResult,
    describe_exception,
    result_from_answer,
    run_task,
    seconds_to_deadline,
    timed_out,
)
from nasforge.registry import register
from nasforge.validation import check_choice, check_int

_START_METHODS = ("fork", "forkserver", "spawn")


@dataclass
class _Running:
    task_id: int
    process: multiprocessing.process.BaseProcess
    connection: Connection
    started: float


@register("executor", "process")
class ProcessExecutor(Executor):
    """Runs every task in a fresh worker process, ``workers`` at a time.

    A fresh process per task means no memory, threads or CUDA state carry over from one
    trial to the next, and a task that crashes, is killed by the out-of-memory killer, or
    exceeds ``timeout`` seconds (its process is then killed) fails alone. Results travel
    back to this process, which alone writes the journal.

    ``start_method`` defaults to ``fork`` on Linux, where the worker inherits the evaluator
    and its data instead of receiving a pickled copy, and to ``spawn`` elsewhere (then the
    task function and its arguments must be picklable). ``threads_per_worker`` sets
    PyTorch's intra-op threads in each worker so that workers do not oversubscribe cores.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        timeout: float | None = None,
        start_method: str | None = None,
        threads_per_worker: int | None = None,
    ) -> None:
        super().__init__(workers=workers, timeout=timeout)
        if start_method is None:
            start_method = "fork" if sys.platform.startswith("linux") else "spawn"
        supported = [m for m in _START_METHODS if m in multiprocessing.get_all_start_methods()]
        self.start_method = check_choice(start_method, "executor.start_method", supported)
        if threads_per_worker is None:
            threads_per_worker = max(1, (os.cpu_count() or 1) // self.workers)
        self.threads_per_worker = check_int(
            threads_per_worker, "executor.threads_per_worker", low=1
        )
        self._context = multiprocessing.get_context(self.start_method)
        self._running: dict[int, _Running] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    def submit(self, task_id: int, fn: Callable[..., Any], *args: Any) -> None:
        if task_id in self._running:
            raise ConfigError.invalid("task_id", task_id, "an id not already running")
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker,
            # a forkserver's workers are the server's children, not this process's
            args=(
                sender,
                None if self.start_method == "forkserver" else os.getpid(),
                self.threads_per_worker,
                fn,
                args,
            ),
            name=f"nasforge-task-{task_id}",
            daemon=True,
        )
        process.start()
        sender.close()  # the worker holds the only sending end now
        self._running[task_id] = _Running(task_id, process, receiver, time.perf_counter())

    def wait(self) -> list[TaskResult]:
        if not self._running:
            return []
        while True:
            timeout = seconds_to_deadline(self.timeout, [r.started for r in self._running.values()])
            ready = wait([r.connection for r in self._running.values()], timeout=timeout)
            results = [
                self._collect(r) for r in list(self._running.values()) if r.connection in ready
            ]
            results += self._expire_overdue()
            if results:
                return results

    def shutdown(self) -> None:
        for running in list(self._running.values()):
            _stop(running.process)
            running.connection.close()
        self._running.clear()

    def _collect(self, running: _Running) -> TaskResult:
        del self._running[running.task_id]
        duration = time.perf_counter() - running.started
        try:
            answer = running.connection.recv()
        except (EOFError, OSError):  # the worker died before it could answer
            running.process.join()
            return TaskResult(
                running.task_id,
                failure=Failure.CRASHED,
                error=_death_message(running.process.exitcode),
                duration=duration,
            )
        finally:
            running.connection.close()
        running.process.join()
        return result_from_answer(running.task_id, answer, duration)

    def _expire_overdue(self) -> list[TaskResult]:
        if self.timeout is None:
            return []
        expired = []
        for running in list(self._running.values()):
            if time.perf_counter() - running.started >= self.timeout:
                _stop(running.process)
                running.connection.close()
                del self._running[running.task_id]
                expired.append(
                    timed_out(
                        running.task_id, self.timeout, running.started, "its worker was stopped"
                    )
                )
        return expired


def _worker(
    connection: Connection,
    driver: int | None,
    threads: int,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    """Runs in the worker process: one task, one answer, then exit."""
    _die_with(driver)
    answer = run_task(fn, threads, args)
    try:
        connection.send(answer)
    except Exception as exc:  # e.g. a return value that cannot be pickled
        failure, message = describe_exception(exc)
        connection.send(("error", (failure.value, f"cannot send the result back: {message}")))
    finally:
        connection.close()


def _die_with(driver: int | None) -> None:
    """Have the kernel kill this worker when its parent (``driver``, when known) dies, even
    by ``kill -9`` (Linux's ``PR_SET_PDEATHSIG``), so that no orphaned trial keeps a core
    busy after a crash."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if driver is not None and os.getppid() != driver:  # it died before prctl took effect
        os._exit(1)


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    if process.is_alive():
        process.terminate()
        process.join(timeout=2)
    if process.is_alive():
        process.kill()
    process.join()


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (the out-of-memory killer sends SIGKILL)" if -exitcode == signal.SIGKILL else ""
        return f"the worker process died from signal {name}{hint}"
    return f"the worker process exited with code {exitcode} without a result"
