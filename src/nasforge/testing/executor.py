"""The executor conformance suite: a result for every task with its value, exceptions as
failure results, never more than ``workers`` tasks at once, an idempotent shutdown, and
pickling as its options, into an executor that runs tasks here and in another process."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from nasforge.execution.base import Executor, Failure, TaskResult
from nasforge.registry import build
from nasforge.testing._spawn import run_in_subprocess

__all__ = ["ExecutorConformance", "drain", "fail", "occupy", "run_pickled", "square"]

Factory = Callable[[], Executor]
#: ``(task_id, fn, args)``
Task = tuple[int, Callable[..., Any], tuple[Any, ...]]


def square(x: int) -> dict[str, Any]:
    """A task with a structured result."""
    return {"x": x, "square": x * x}


def fail(message: str) -> None:
    """A task that raises ``ValueError(message)``."""
    raise ValueError(message)


def occupy(directory: str, task_id: int) -> int:
    """A task that marks itself running in ``directory`` for a moment; returns how many
    tasks it saw running at once (itself included)."""
    marker = Path(directory, f"{task_id}.running")
    marker.touch()
    try:
        seen = len(list(Path(directory).glob("*.running")))
        time.sleep(0.05)  # room for others to overlap; nothing is timed
        return max(seen, len(list(Path(directory).glob("*.running"))))
    finally:
        marker.unlink()


def drain(
    executor: Executor, tasks: Sequence[Task], *, running: Iterable[int] = ()
) -> dict[int, TaskResult]:
    """Run ``tasks`` as the search loop does: submit while a worker is free, collect with
    ``wait`` until nothing runs; checks the bookkeeping on the way and returns the results
    by task id. ``running`` are the ids of tasks submitted before."""
    pending = list(tasks)
    submitted = set(running)
    results: dict[int, TaskResult] = {}
    while pending or executor.running:
        while pending and executor.free > 0:
            task_id, fn, args = pending.pop(0)
            executor.submit(task_id, fn, *args)
            submitted.add(task_id)
            assert executor.running <= executor.workers
            assert executor.free == executor.workers - executor.running
        finished = executor.wait()
        assert finished, "wait() returned nothing although tasks were running"
        for result in finished:
            assert isinstance(result, TaskResult), result
            assert result.task_id in submitted, f"unknown task id {result.task_id}"
            assert result.task_id not in results, f"task {result.task_id} returned twice"
            results[result.task_id] = result
    assert executor.running == 0 and executor.free == executor.workers
    assert executor.wait() == []  # nothing running: returns at once
    return results


def run_pickled(payload: bytes, n: int) -> list[tuple[int, Any, str | None, str | None]]:
    """Unpickle an executor and run ``n`` :func:`square` tasks and one :func:`fail`; the
    results as plain data (what the suite runs in a spawned process)."""
    executor: Executor = pickle.loads(payload)
    tasks: list[Task] = [(i, square, (i,)) for i in range(n)]
    tasks.append((n, fail, ("failed on purpose",)))
    try:
        results = drain(executor, tasks)
    finally:
        executor.shutdown()
    return [
        (r.task_id, r.value, None if r.failure is None else r.failure.value, r.error)
        for r in sorted(results.values(), key=lambda r: r.task_id)
    ]


class ExecutorConformance:
    """Pytest base class: every ``test_*`` checks one part of the executor contract.

    Name a registered executor and its options, or override the ``factory`` fixture::

        from nasforge.testing import ExecutorConformance

        class TestMyExecutor(ExecutorConformance):
            executor = "mine"
            options = {"workers": 2}

    Task functions are top-level functions of this module, so that workers anywhere can
    import them.
    """

    #: Registered executor name (used by the default ``factory`` fixture).
    executor: ClassVar[str | None] = None
    #: Constructor options for the default factory.
    options: ClassVar[dict[str, Any]] = {}
    #: Tasks per test.
    tasks: ClassVar[int] = 5

    @pytest.fixture
    def factory(self) -> Factory:
        """``factory() -> Executor``; override to build your executor yourself."""
        if self.executor is None:
            pytest.fail("set `executor = 'name'` or override the `factory` fixture")
        name, options = self.executor, dict(self.options)
        return lambda: build("executor", name, **options)

    def test_results_come_back_for_every_task(self, factory: Factory) -> None:
        with factory() as executor:
            results = drain(executor, [(i, square, (i,)) for i in range(self.tasks)])
        assert sorted(results) == list(range(self.tasks))
        for i, result in results.items():
            assert result.ok and result.failure is None and result.error is None
            assert result.value["square"] == i * i and result.value["x"] == i
            assert result.duration >= 0

    def test_an_exception_comes_back_as_a_failure(self, factory: Factory) -> None:
        with factory() as executor:
            results = drain(executor, [(0, square, (3,)), (1, fail, ("bad trial",))])
            after = drain(executor, [(2, square, (4,))])  # the executor keeps working
        assert results[0].ok and results[0].value["square"] == 9
        failed = results[1]
        assert not failed.ok and failed.failure is Failure.EXCEPTION and failed.value is None
        assert "ValueError" in str(failed.error) and "bad trial" in str(failed.error)
        assert after[2].ok and after[2].value["square"] == 16

    def test_never_more_than_workers_run_at_once(self, factory: Factory, tmp_path: Path) -> None:
        with factory() as executor:
            n = 2 * executor.workers + 1
            results = drain(executor, [(i, occupy, (str(tmp_path), i)) for i in range(n)])
        assert all(r.ok for r in results.values()), [r.error for r in results.values()]
        seen = max(r.value for r in results.values())
        assert 1 <= seen <= executor.workers

    def test_shutdown_is_idempotent(self, factory: Factory) -> None:
        executor = factory()
        executor.submit(0, square, 1)
        executor.shutdown()
        executor.shutdown()
        assert executor.running == 0
        with factory() as unused:  # never used: shutting it down is harmless
            unused.shutdown()

    def test_pickles_as_its_options(self, factory: Factory) -> None:
        """The copy is a fresh executor with equal options, and it runs tasks."""
        with factory() as executor:
            executor.submit(0, square, 2)
            copy = pickle.loads(pickle.dumps(executor))
            assert type(copy) is type(executor)
            assert copy.options == executor.options
            assert copy.workers == executor.workers and copy.running == 0
            assert drain(executor, [], running=[0])[0].value["square"] == 4
        with copy:
            results = drain(copy, [(1, square, (5,)), (2, fail, ("in the copy",))])
        assert results[1].value["square"] == 25
        assert results[2].failure is Failure.EXCEPTION and "in the copy" in str(results[2].error)

    def test_runs_tasks_in_another_process(self, factory: Factory) -> None:
        """Pickled here, it runs tasks in a spawned process."""
        with factory() as executor:
            payload = pickle.dumps(executor)
        results = run_in_subprocess(run_pickled, payload, 3)
        assert [(i, v["square"] if v else None, f) for i, v, f, _ in results] == [
            (0, 0, None),
            (1, 1, None),
            (2, 4, None),
            (3, None, Failure.EXCEPTION.value),
        ]
        assert "failed on purpose" in str(results[3][3])
