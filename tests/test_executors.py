import os
import signal
import time
from pathlib import Path

import pytest

import nasforge as nf
from nasforge.execution import Failure, ProcessExecutor, SerialExecutor
from nasforge.testing.executor import occupy

_LEAK: list[bytes] = []


def square(x):
    return x * x


def fail(message):
    raise ValueError(message)


def out_of_memory():
    raise MemoryError


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def exit_abruptly(code):
    os._exit(code)


def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def leak_and_count():
    _LEAK.append(b"x" * 1_000_000)
    return len(_LEAK)


def torch_threads(*ignored):
    """PyTorch's thread count where the task runs (a tensor argument makes the worker
    import torch before the task starts, as a pickled evaluator does)."""
    import torch

    return torch.get_num_threads()


def meet(directory, me, other):
    """Leave a marker and wait (up to a minute) for the other task's: both only return
    True when they were running at the same moment."""
    Path(directory, me).touch()
    deadline = time.monotonic() + 60
    while not Path(directory, other).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def note_pid_then_sleep(pid_file, seconds, done_file):
    """Write this worker's pid, sleep, then mark that the sleep ran to its end."""
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    Path(done_file).touch()
    return "late"


def wait_until(condition, timeout=60.0):
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")  # a zombie counts as dead
    try:
        return "zombie" not in status.read_text()
    except FileNotFoundError:
        return False


def unpicklable():
    return lambda: None


def a_lock():
    """A result that no pickler can send (Ray's cloudpickle sends lambdas)."""
    import threading

    return threading.Lock()


def torch_tensor():
    import torch

    return torch.zeros(1)


def _drain(executor):
    results = {}
    while executor.running:
        for result in executor.wait():
            results[result.task_id] = result
    return results


@pytest.mark.parametrize("name", ["serial", "process"])
def test_executors_are_registered_plugins(name):
    assert name in nf.available("executor")
    executor = nf.build("executor", name, timeout=5)
    assert executor.timeout == 5.0


@pytest.mark.parametrize("make", [SerialExecutor, lambda: ProcessExecutor(workers=2)])
def test_values_and_exceptions_come_back_per_task(make):
    with make() as executor:
        executor.submit(0, square, 3)
        executor.submit(1, fail, "bad trial")
        executor.submit(2, out_of_memory)
        results = _drain(executor)
    assert results[0].ok and results[0].value == 9
    assert results[1].failure is Failure.EXCEPTION
    assert "ValueError: bad trial" in results[1].error
    assert "Traceback" in results[1].error
    assert results[2].failure is Failure.OUT_OF_MEMORY


def test_serial_runs_in_submission_order_one_at_a_time():
    executor = SerialExecutor()
    assert executor.free == 1
    for i in range(3):
        executor.submit(i, square, i)
    assert executor.free == 0 and executor.running == 3
    assert [executor.wait()[0].task_id for _ in range(3)] == [0, 1, 2]
    assert executor.wait() == []


def test_serial_timeout_interrupts_the_task(tmp_path):
    executor = SerialExecutor(timeout=0.3)
    done = tmp_path / "done"
    executor.submit(0, note_pid_then_sleep, tmp_path / "pid", 60, done)
    (result,) = executor.wait()
    assert result.failure is Failure.TIMEOUT and "0.3 s" in result.error
    assert (tmp_path / "pid").read_text() == str(os.getpid())  # it ran in this process
    assert not done.exists()  # and was cut off in its sleep, not waited for


def test_process_workers_run_in_parallel(tmp_path):
    with ProcessExecutor(workers=2) as executor:
        executor.submit(0, meet, tmp_path, "a", "b")
        executor.submit(1, meet, tmp_path, "b", "a")
        assert executor.free == 0
        results = _drain(executor)
    assert [results[i].value for i in (0, 1)] == [True, True]  # both ran at the same time


def test_process_crashes_fail_only_their_task():
    with ProcessExecutor(workers=2) as executor:
        executor.submit(0, exit_abruptly, 3)
        executor.submit(1, kill_self)
        results = _drain(executor)
        executor.submit(2, square, 4)
        results.update(_drain(executor))
    assert results[0].failure is Failure.CRASHED
    assert "exited with code 3" in results[0].error
    assert results[1].failure is Failure.CRASHED
    assert "SIGKILL" in results[1].error and "out-of-memory" in results[1].error
    assert results[2].value == 16


def test_process_timeout_stops_the_worker(tmp_path):
    pid_file, done = tmp_path / "pid", tmp_path / "done"
    with ProcessExecutor(workers=2, timeout=2) as executor:
        executor.submit(0, note_pid_then_sleep, pid_file, 300, done)
        executor.submit(1, square, 5)
        assert wait_until(pid_file.exists)  # the slow task is in its sleep
        results = _drain(executor)
    assert results[1].value == 25
    assert results[0].failure is Failure.TIMEOUT
    assert "stopped" in results[0].error
    assert not alive(int(pid_file.read_text()))  # its worker is gone...
    assert not done.exists()  # ...and never finished the task


def test_memory_does_not_carry_over_between_tasks():
    with ProcessExecutor(workers=1) as executor:
        counts = []
        for i in range(3):
            executor.submit(i, leak_and_count)
            counts += [r.value for r in _drain(executor).values()]
    assert counts == [1, 1, 1]  # each task starts from the driver's clean state
    assert _LEAK == []


def test_threads_per_worker_is_applied():
    import torch

    assert torch.get_num_threads() == 1  # what a forked worker inherits (conftest)
    with ProcessExecutor(workers=2, threads_per_worker=3) as executor:
        executor.submit(0, torch_threads)
        (result,) = _drain(executor).values()
    assert result.value == 3
    with ProcessExecutor(workers=2) as executor:  # default: the cores shared out
        executor.submit(0, torch_threads)
        (result,) = _drain(executor).values()
    assert result.value == max(1, (os.cpu_count() or 1) // 2)


@pytest.mark.slow
@pytest.mark.parametrize(
    "lazy",
    [False, True],
)
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="PyTorch caps its threads at the cores")
def test_threads_per_worker_is_applied_in_spawned_workers(monkeypatch, lazy):
    """Also when the task imports torch itself: the worker's environment says how many
    threads to use (PyTorch caps the number at the cores, hence 2)."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # PyTorch's default in the fresh worker
    with ProcessExecutor(workers=1, threads_per_worker=2, start_method="spawn") as executor:
        if lazy:  # the task imports torch itself
            executor.submit(0, torch_threads)
        else:  # the task's arguments bring torch in, as a pickled evaluator does
            executor.submit(0, torch_threads, torch.zeros(1))
        (result,) = _drain(executor).values()
    assert result.value == 2


def test_an_unpicklable_result_is_a_failure_not_a_hang():
    with ProcessExecutor(workers=1) as executor:
        executor.submit(0, unpicklable)
        (result,) = _drain(executor).values()
    assert result.failure is Failure.EXCEPTION
    assert "cannot send the result back" in result.error


@pytest.mark.slow
def test_spawn_start_method_runs_picklable_tasks():
    with ProcessExecutor(workers=2, start_method="spawn") as executor:
        executor.submit(0, square, 5)
        (result,) = _drain(executor).values()
    assert result.value == 25


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"workers": 0}, "executor.workers"),
        ({"timeout": -1}, "executor.timeout"),
        ({"start_method": "thread"}, "executor.start_method"),
        ({"threads_per_worker": 0}, "executor.threads_per_worker"),
    ],
)
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(nf.ConfigError) as info:
        ProcessExecutor(**kwargs)
    assert info.value.field == field


def test_shutdown_stops_running_workers():
    executor = ProcessExecutor(workers=1)
    executor.submit(0, sleep_then, 30, None)
    process = next(iter(executor._running.values())).process
    executor.shutdown()
    assert not process.is_alive()
    assert executor.running == 0


@pytest.fixture(scope="module")
def ray_executor():
    """One local Ray instance and executor (2 actors) shared by this module's Ray tests."""
    pytest.importorskip("ray")
    from nasforge.execution.ray import RayExecutor

    tests_dir = os.path.dirname(os.path.abspath(__file__))  # workers import these task functions
    # 3 threads by default in a worker, 2 CPUs per trial: the trial must run on 2 threads
    env = {"PYTHONPATH": tests_dir, "OMP_NUM_THREADS": "3"}
    executor = RayExecutor(
        workers=2,
        cpus_per_trial=2,  # a local instance of 4 logical CPUs
        timeout=120,  # generous: a Ray worker's first torch import is slow on a busy machine
        init_options={"runtime_env": {"env_vars": env}},
    )
    executor.start(wait=True)  # Ray and both actors up
    yield executor
    executor.shutdown()


def pid():
    return os.getpid()


class CountsLoads:
    """A task function that appends its worker's pid to ``log`` whenever it is unpickled
    (as an evaluator is when a worker receives it), and returns that pid when called."""

    def __init__(self, log):
        self.log = str(log)

    def __setstate__(self, state):
        self.__dict__.update(state)
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()}\n")

    def __call__(self, x):
        return os.getpid(), x


def _actor_pids(executor):
    """The pids of the executor's live actors, asked by running one task on each."""
    for i in range(executor.workers):
        executor.submit(i, pid)
    return {r.value for r in _drain(executor).values()}


@pytest.mark.slow
@pytest.mark.ray
def test_ray_executor_runs_tasks_and_isolates_failures(ray_executor):
    ray_executor.submit(0, square, 6)
    ray_executor.submit(1, fail, "bad trial")
    results = _drain(ray_executor)
    ray_executor.submit(2, torch_threads, torch_tensor())
    ray_executor.submit(3, a_lock)
    results.update(_drain(ray_executor))
    assert results[0].value == 36
    assert results[1].failure is Failure.EXCEPTION and "bad trial" in results[1].error
    assert results[2].value == 2  # two CPUs per trial -> two PyTorch threads (not the 3 default)
    assert results[3].failure is Failure.EXCEPTION and "cannot send" in results[3].error


@pytest.mark.slow
@pytest.mark.ray
def test_ray_actors_are_reused_and_load_a_task_function_once(ray_executor, tmp_path):
    log = tmp_path / "loads"
    task = CountsLoads(log)
    results = {}
    for i in range(12):  # as the search loop submits: one task per free worker
        ray_executor.submit(i, task, i)
        if not ray_executor.free:
            results.update({r.task_id: r for r in ray_executor.wait()})
    results.update(_drain(ray_executor))
    assert sorted(results) == list(range(12)) and all(r.ok for r in results.values())
    assert [results[i].value[1] for i in range(12)] == list(range(12))
    pids = {r.value[0] for r in results.values()}
    assert 1 <= len(pids) <= ray_executor.workers  # long-lived workers, not one per task
    loads = log.read_text().split()
    assert sorted(loads) == sorted(str(p) for p in pids)  # unpickled once per worker
    assert pids <= _actor_pids(ray_executor)  # and the same workers go on


@pytest.mark.slow
@pytest.mark.ray
def test_ray_executor_queues_tasks_beyond_its_workers(ray_executor, tmp_path):
    """Each actor runs one task at a time; more tasks than workers wait their turn."""
    for i in range(5):
        ray_executor.submit(i, occupy, str(tmp_path), i)
    assert ray_executor.running == 5 and ray_executor.free == 0
    with pytest.raises(nf.ConfigError, match="task_id"):
        ray_executor.submit(4, square, 1)  # already queued
    results = _drain(ray_executor)
    assert sorted(results) == list(range(5)) and all(r.ok for r in results.values())
    assert max(r.value for r in results.values()) <= ray_executor.workers


@pytest.mark.slow
@pytest.mark.ray
def test_ray_executor_timeout_kills_and_replaces_the_worker(ray_executor, tmp_path):
    pid_file, done = tmp_path / "pid", tmp_path / "done"
    before = _actor_pids(ray_executor)
    ray_executor.timeout = 1.0
    try:
        ray_executor.submit(0, note_pid_then_sleep, str(pid_file), 300, str(done))
        assert wait_until(pid_file.exists, timeout=120)  # the task is in its sleep
        (result,) = _drain(ray_executor).values()
    finally:
        ray_executor.timeout = 120.0
    assert result.failure is Failure.TIMEOUT and "killed" in result.error
    stopped = int(pid_file.read_text())
    assert stopped in before
    assert wait_until(lambda: not alive(stopped))  # the worker was killed
    assert not done.exists()
    after = _actor_pids(ray_executor)  # a new worker took its place
    assert len(after) == ray_executor.workers and stopped not in after


@pytest.mark.slow
@pytest.mark.ray
def test_ray_executor_reports_a_crashed_worker_and_carries_on(ray_executor):
    ray_executor.submit(0, square, 2)
    ray_executor.submit(1, exit_abruptly, 3)
    results = _drain(ray_executor)
    ray_executor.submit(2, square, 5)  # the function goes again to the replacement worker
    ray_executor.submit(3, square, 6)
    results.update(_drain(ray_executor))
    assert results[0].value == 4
    assert results[1].failure is Failure.CRASHED and "worker died" in results[1].error
    assert [results[2].value, results[3].value] == [25, 36]
    assert len(_actor_pids(ray_executor)) == ray_executor.workers


def test_ray_executor_without_ray_gives_the_install_hint(monkeypatch):
    import sys

    from nasforge.execution.ray import RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(nf.MissingDependencyError, match=r"nasforge\[ray\]"):
        RayExecutor()


RAY_DRIVER = """
import json, os, sys
from nasforge.execution import Failure
from nasforge.execution.ray import RayExecutor

def square(x):
    return x * x

def kill_self():
    os.kill(os.getpid(), 9)

executor = RayExecutor(workers=2, address=sys.argv[1], timeout=120)
executor.submit(0, square, 7)
executor.submit(1, kill_self)
results = {}
while executor.running:
    for r in executor.wait():
        results[r.task_id] = [r.value, r.failure.value if r.failure else None]
executor.shutdown()
print(json.dumps(results))
"""


@pytest.mark.slow
@pytest.mark.ray
def test_ray_executor_joins_an_existing_cluster_and_leaves_it_running(tmp_path):
    """A cluster started apart (``ray start --head``), a search driver that joins it by
    address, and the cluster still up after the driver shut its executor down."""
    pytest.importorskip("ray")
    import json
    import shutil
    import socket
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    ray_cli = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
    with socket.socket() as probe:  # a free port for the cluster's head
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    start = [ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=2"]
    start += ["--include-dashboard=false", "--disable-usage-stats"]
    head = subprocess.Popen(
        start,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def cluster_up() -> bool:
        status = [ray_cli, "status", f"--address={address}"]
        return subprocess.run(status, capture_output=True, timeout=60).returncode == 0

    try:
        deadline = time.monotonic() + 90
        while not cluster_up():
            assert head.poll() is None and time.monotonic() < deadline, "ray start failed"
            time.sleep(1)
        driver = tmp_path / "driver.py"
        driver.write_text(RAY_DRIVER)
        out = subprocess.run(
            [sys.executable, str(driver), address], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-2000:]
        results = json.loads(out.stdout.strip().splitlines()[-1])
        assert results["0"] == [49, None]
        assert results["1"] == [None, "crashed"]
        assert cluster_up()  # the driver left the cluster running
    finally:
        head.terminate()  # ``ray start --block`` stops its cluster on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        # `ray start` records its cluster for later `ray.init()` calls; forget this one
        current = Path(tempfile.gettempdir(), "ray", "ray_current_cluster")
        if current.exists() and address.split(":")[1] in current.read_text():
            current.unlink()
