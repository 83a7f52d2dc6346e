"""Trials as Ray tasks, on an existing Ray cluster or a local one (extra ``nasforge[ray]``)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nasforge.errors import ConfigError, MissingDependencyError
from nasforge.execution.base import (
    Executor,
    Failure,
    TaskResult,
    result_from_answer,
    run_task,
    seconds_to_deadline,
    timed_out,
)
from nasforge.registry import register
from nasforge.validation import check_number, check_str

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours its error messages
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[\w.\-]+:\d+)$")


@dataclass
class _Running:
    task_id: int
    ref: Any  # ray.ObjectRef
    started: float


@register("executor", "ray")
class RayExecutor(Executor):
    """Runs each trial as a Ray task, ``workers`` at a time.

    With ``address=None`` a local Ray instance is started (with ``workers *
    cpus_per_trial`` CPUs) and stopped again at :meth:`shutdown`; with an address such as
    ``"ray://head:10001"`` or ``"auto"`` the trials run on that cluster, which is left
    running. Each trial reserves ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs, and
    PyTorch in the task uses that many threads. The task function is put in Ray's object
    store once, not sent with every trial. Ray never retries a trial: a failure is recorded
    and the search moves on. Ray is started (or connected to) on the first trial, or by
    :meth:`start`, not when the executor is made.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        timeout: float | None = None,
        address: str | None = None,
        cpus_per_trial: float = 1,
        gpus_per_trial: float = 0,
        init_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(workers=workers, timeout=timeout)
        check_number(cpus_per_trial, "executor.cpus_per_trial", low=0, low_open=True)
        check_number(gpus_per_trial, "executor.gpus_per_trial", low=0)
        if address is not None and not _ADDRESS.match(check_str(address, "executor.address")):
            raise ConfigError.invalid(
                "executor.address",
                address,
                "None (a local Ray), 'auto', 'local', 'host:port' or 'ray://host:port'",
            )
        if init_options is not None and not (
            isinstance(init_options, Mapping) and all(isinstance(k, str) for k in init_options)
        ):
            raise ConfigError.invalid(
                "executor.init_options", init_options, "a mapping of ray.init keyword arguments"
            )
        try:
            import ray
        except ImportError:
            raise MissingDependencyError(
                "ray", extra="ray", purpose="for the ray executor"
            ) from None
        self._ray = ray
        self._started_ray = False
        self.address = address
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self.init_options = dict(init_options or {})
        self._task: Any = None
        self._functions: dict[Callable[..., Any], Any] = {}
        self._running: dict[Any, _Running] = {}

    def start(self) -> None:
        """Connect to Ray (starting a local instance when ``address`` is None) unless this
        process already is; the first :meth:`submit` calls it. Idempotent."""
        ray = self._ray
        if self._task is not None:
            return
        if not ray.is_initialized():
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if self.address is None:
                options["num_cpus"] = max(1, round(self.workers * self.cpus_per_trial))
            options.update(self.init_options)
            # "local": a new instance, even where `ray start` left a cluster to join
            ray.init(address=self.address or "local", **options)
            self._started_ray = True
        self._task = ray.remote(
            num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_retries=0
        )(_ray_task)

    @property
    def running(self) -> int:
        return len(self._running)

    def submit(self, task_id: int, fn: Callable[..., Any], *args: Any) -> None:
        self.start()
        if fn not in self._functions:
            self._functions[fn] = self._ray.put(fn)
        threads = max(1, int(self.cpus_per_trial))
        ref = self._task.remote(self._functions[fn], threads, *args)
        self._running[ref] = _Running(task_id, ref, time.perf_counter())

    def wait(self) -> list[TaskResult]:
        if not self._running:
            return []
        while True:
            timeout = seconds_to_deadline(self.timeout, [r.started for r in self._running.values()])
            ready, _ = self._ray.wait(
                list(self._running), num_returns=1, timeout=timeout, fetch_local=True
            )
            results = [self._collect(ref) for ref in ready]
            results += self._expire_overdue()
            if results:
                return results

    def shutdown(self) -> None:
        for ref in list(self._running):
            self._ray.cancel(ref, force=True)
        self._running.clear()
        self._functions.clear()
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._started_ray = False
        self._task = None

    def _collect(self, ref: Any) -> TaskResult:
        running = self._running.pop(ref)
        duration = time.perf_counter() - running.started
        exceptions = self._ray.exceptions
        try:
            answer = self._ray.get(ref)
        except exceptions.OutOfMemoryError as exc:
            return TaskResult(
                running.task_id, failure=Failure.OUT_OF_MEMORY, error=str(exc), duration=duration
            )
        except (exceptions.WorkerCrashedError, exceptions.RayTaskError) as exc:
            return TaskResult(
                running.task_id,
                failure=Failure.CRASHED,
                error=_ANSI.sub("", str(exc)),
                duration=duration,
            )
        return result_from_answer(running.task_id, answer, duration)

    def _expire_overdue(self) -> list[TaskResult]:
        if self.timeout is None:
            return []
        expired = []
        for ref, running in list(self._running.items()):
            if time.perf_counter() - running.started >= self.timeout:
                self._ray.cancel(ref, force=True)
                del self._running[ref]
                expired.append(
                    timed_out(
                        running.task_id, self.timeout, running.started, "its Ray task was cancelled"
                    )
                )
        return expired


def _ray_task(fn: Callable[..., Any], threads: int, *args: Any) -> tuple[str, Any]:
    """Runs inside a Ray worker; failures come back as data, not as Ray errors."""
    return run_task(fn, threads, args)
