"""Trials on long-lived Ray actors, on an existing Ray cluster or a local one (extra
``nasforge[ray]``)."""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import re
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from nasforge.errors import ConfigError, MissingDependencyError
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
from nasforge.validation import check_number, check_str

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours its error messages
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[\w.\-]+:\d+)$")
#: Task functions a worker keeps (least recently used dropped first), and the driver.
_WORKER_CACHE = 4
_DRIVER_CACHE = 16
#: Modules an actor imports as it starts when the driver has, rather than in its first
#: trial: PyTorch, and what its first optimizer imports lazily (about a second of CPU).
_PRELOAD = ("torch", "torch._dynamo")


@dataclass
class _Actor:
    handle: Any  # ray.actor.ActorHandle
    held: tuple[int, ...] = ()  # tokens of the task functions it has loaded


@dataclass
class _Running:
    task_id: int
    actor: _Actor
    started: float


@register("executor", "ray")
class RayExecutor(Executor):
    """Runs trials on ``workers`` long-lived Ray actors, one trial per actor at a time.

    With ``address=None`` a local Ray instance is started (with ``workers *
    cpus_per_trial`` CPUs) and stopped again at :meth:`shutdown`; with an address such as
    ``"auto"`` or ``"ray://head:10001"`` the actors run on that cluster, which is left
    running. Each actor reserves ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs, and
    PyTorch in it uses that many threads (an actor imports PyTorch as it starts when this
    process has). A task function is put in Ray's object store once and loaded by each
    actor on its first trial; later trials on that actor send only their arguments, so the
    evaluator, its data and its imports stay loaded, and so does whatever else a trial
    leaves behind in its actor. A trial past ``timeout`` seconds (counted from when it is
    handed to an actor), or whose actor dies, fails, and the actor is killed and replaced;
    nothing is retried. Ray is started (or connected to) on the first trial, or by
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
        self._actor_class: Any = None
        self._idle: list[_Actor] = []
        self._running: dict[Any, _Running] = {}  # by the ObjectRef of the trial's result
        self._queue: deque[tuple[int, Callable[..., Any], tuple[Any, ...]]] = deque()
        # task function -> (token, ObjectRef of it, the function itself, kept alive)
        self._functions: OrderedDict[Hashable, tuple[int, Any, Any]] = OrderedDict()
        self._tokens = itertools.count()

    @property
    def threads(self) -> int:
        """PyTorch's intra-op threads in each actor."""
        return max(1, int(self.cpus_per_trial))

    def start(self, wait: bool = False) -> None:
        """Connect to Ray (starting a local instance when ``address`` is None) unless this
        process already is, and start the actors; the first :meth:`submit` calls it.
        With ``wait=True``, also block until every idle actor is up (on a cluster without
        room for them, that is forever). Idempotent."""
        ray = self._ray
        if self._actor_class is None:
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
            self._actor_class = ray.remote(
                num_cpus=self.cpus_per_trial,
                num_gpus=self.gpus_per_trial,
                max_restarts=0,
                max_task_retries=0,
            )(_TrialWorker)
            while len(self._idle) < self.workers:  # they start up in the background
                self._idle.append(self._new_actor())
        if wait:
            ray.get([actor.handle.ready.remote() for actor in self._idle])

    @property
    def running(self) -> int:
        return len(self._running) + len(self._queue)

    def submit(self, task_id: int, fn: Callable[..., Any], *args: Any) -> None:
        if any(r.task_id == task_id for r in self._running.values()) or any(
            queued[0] == task_id for queued in self._queue
        ):
            raise ConfigError.invalid("task_id", task_id, "an id not already running")
        self.start()
        self._queue.append((task_id, fn, args))
        self._dispatch()

    def wait(self) -> list[TaskResult]:
        ray = self._ray
        if not self._running:
            return []
        while True:
            timeout = seconds_to_deadline(self.timeout, [r.started for r in self._running.values()])
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
            if ready:  # and any others that finished meanwhile
                ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
            results = [self._collect(ref) for ref in ready]
            results += self._expire_overdue()
            if results:
                self._dispatch()
                return results

    def shutdown(self) -> None:
        for actor in self._idle + [r.actor for r in self._running.values()]:
            self._kill(actor)
        self._idle.clear()
        self._running.clear()
        self._queue.clear()
        self._functions.clear()
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._started_ray = False
        self._actor_class = None

    # --- internals ---------------------------------------------------------------------------
    def _new_actor(self) -> _Actor:
        preload = [name for name in _PRELOAD if name in sys.modules]
        return _Actor(self._actor_class.remote(self.threads, preload))

    def _kill(self, actor: _Actor) -> None:
        with contextlib.suppress(Exception):  # already gone, or Ray itself is
            self._ray.kill(actor.handle, no_restart=True)

    def _dispatch(self) -> None:
        """Start queued tasks on idle actors (new ones replace those that were lost)."""
        while self._queue and (self._idle or len(self._running) < self.workers):
            task_id, fn, args = self._queue.popleft()
            token, fn_ref = self._ship(fn)
            # an idle actor that holds the function if there is one, else any, else a new one
            holders = [i for i, idle in enumerate(self._idle) if token in idle.held]
            if self._idle:
                actor = self._idle.pop(holders[-1] if holders else -1)
            else:
                actor = self._new_actor()
            shipped = [] if token in actor.held else [fn_ref]  # a list: Ray leaves it as is
            ref = actor.handle.run.remote(token, shipped, *args)
            self._running[ref] = _Running(task_id, actor, time.perf_counter())

    def _ship(self, fn: Callable[..., Any]) -> tuple[int, Any]:
        """The token and object-store reference of ``fn``, put there on first use."""
        try:
            key: Hashable = ("fn", fn)
            hash(key)
        except TypeError:  # an unhashable callable: known by identity while cached
            key = ("id", id(fn))
        if key in self._functions:
            self._functions.move_to_end(key)
        else:
            self._functions[key] = (next(self._tokens), self._ray.put(fn), fn)
            if len(self._functions) > _DRIVER_CACHE:
                self._functions.popitem(last=False)
        token, fn_ref, _ = self._functions[key]
        return token, fn_ref

    def _collect(self, ref: Any) -> TaskResult:
        running = self._running.pop(ref)
        actor = running.actor
        duration = time.perf_counter() - running.started
        exceptions = self._ray.exceptions
        try:
            answer, actor.held = self._ray.get(ref)
        except exceptions.RayTaskError as exc:  # the actor lives: an unpicklable value...
            actor.held = ()
            self._idle.append(actor)
            error = "cannot send the arguments or the result: " + _ANSI.sub("", str(exc))
            return TaskResult(
                running.task_id, failure=Failure.EXCEPTION, error=error, duration=duration
            )
        except exceptions.RayError as exc:  # the actor (or its node) died: replace it
            self._kill(actor)
            error = "the Ray worker died without a result: " + _ANSI.sub("", str(exc))
            # Ray's memory monitor kills a worker with an OutOfMemoryError
            oom = isinstance(exc, exceptions.OutOfMemoryError)
            failure = Failure.OUT_OF_MEMORY if oom else Failure.CRASHED
            return TaskResult(running.task_id, failure=failure, error=error, duration=duration)
        self._idle.append(actor)
        return result_from_answer(running.task_id, answer, duration)

    def _expire_overdue(self) -> list[TaskResult]:
        if self.timeout is None:
            return []
        expired = []
        for ref, running in list(self._running.items()):
            if time.perf_counter() - running.started >= self.timeout:
                self._kill(running.actor)
                del self._running[ref]
                expired.append(
                    timed_out(
                        running.task_id,
                        self.timeout,
                        running.started,
                        "its Ray worker was killed (and replaced)",
                    )
                )
        return expired


class _TrialWorker:
    """A Ray actor that runs trials one at a time and keeps the last few task functions it
    was sent (the evaluator, its data, the modules they import) for the next trials."""

    def __init__(self, threads: int, preload: list[str]) -> None:
        self.threads = threads
        self.functions: OrderedDict[int, Callable[..., Any]] = OrderedDict()
        run_task(_preload, threads, (preload,))  # the thread count is set before the imports

    def ready(self) -> int:
        """This actor's process id, once it is up."""
        return os.getpid()

    def run(self, token: int, shipped: list[Any], *args: Any) -> tuple[Any, tuple[int, ...]]:
        """Run task function ``token`` (loaded from ``shipped[0]``, a reference into the
        object store, when sent) on ``args``: a :func:`run_task` answer, and the tokens of
        the task functions this actor now holds."""
        if shipped:
            import ray

            try:
                self.functions[token] = ray.get(shipped[0])
            except BaseException as exc:  # e.g. a module the worker cannot import
                failure, message = describe_exception(exc)
                error = f"cannot load the task function on the worker: {message}"
                return ("error", (failure.value, error)), tuple(self.functions)
            while len(self.functions) > _WORKER_CACHE:
                self.functions.popitem(last=False)
        fn = self.functions.get(token)
        if fn is None:  # the driver's record is out of date: never expected
            error = "the worker was not sent the task function"
            return ("error", (Failure.EXCEPTION.value, error)), tuple(self.functions)
        self.functions.move_to_end(token)
        return run_task(fn, self.threads, args), tuple(self.functions)


def _preload(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
