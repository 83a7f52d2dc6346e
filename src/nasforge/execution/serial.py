"""The default executor: tasks run one after another in this process."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from nasforge.execution.base import Executor, Failure, TaskResult, describe_exception
from nasforge.registry import register

logger = logging.getLogger(__name__)


class _Timeout(BaseException):
    """Raised inside a task by the alarm; a BaseException so task code cannot swallow it."""


@register("executor", "serial")
class SerialExecutor(Executor):
    """Runs each task in this process when :meth:`wait` is called, one at a time.

    ``workers`` is how many tasks may wait in its queue: with ``workers=N`` a deterministic
    search proposes and tells exactly as it does with ``N`` parallel workers, so a serial
    run reproduces the trials of a parallel one (for debugging, say).

    A per-task ``timeout`` is enforced with ``SIGALRM`` (Unix main thread only; elsewhere
    it is not enforced and a warning says so): the task is interrupted between Python
    bytecodes or PyTorch operations and recorded as timed out.
    """

    def __init__(self, *, workers: int = 1, timeout: float | None = None) -> None:
        super().__init__(workers=workers, timeout=timeout)
        self._queue: deque[tuple[int, Callable[..., Any], tuple[Any, ...]]] = deque()

    @property
    def running(self) -> int:
        return len(self._queue)

    def submit(self, task_id: int, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.append((task_id, fn, args))

    def wait(self) -> list[TaskResult]:
        if not self._queue:
            return []
        task_id, fn, args = self._queue.popleft()
        start = time.perf_counter()
        try:
            with _alarm(self.timeout):
                value = fn(*args)
        except _Timeout:
            return [
                TaskResult(
                    task_id,
                    failure=Failure.TIMEOUT,
                    error=f"the trial exceeded its timeout of {self.timeout:g} s",
                    duration=time.perf_counter() - start,
                )
            ]
        except Exception as exc:
            failure, message = describe_exception(exc)
            return [
                TaskResult(
                    task_id, failure=failure, error=message, duration=time.perf_counter() - start
                )
            ]
        return [TaskResult(task_id, value=value, duration=time.perf_counter() - start)]

    def shutdown(self) -> None:
        self._queue.clear()


@contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        if seconds is not None:
            logger.warning(
                "the serial executor cannot enforce a timeout outside the main thread of a "
                "Unix process; use the process executor for timeouts"
            )
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
