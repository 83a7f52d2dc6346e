"""kill -9 a search at random moments (after a random number of journal records), resume
it each time, and check nothing is lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nasforge.nas.journal import read_journal

BUDGET = 100

SCRIPT = textwrap.dedent(
    f"""
    import os, sys, time
    from pathlib import Path
    import nasforge as nf
    from nasforge.space import Choice, IntRange, Space

    class Slow:
        def evaluate(self, arch, budget=None):
            Path(sys.argv[4], str(os.getpid())).touch()  # where the trial ran
            time.sleep(0.08)
            return {{"acc": {{"a": 0.5, "b": 0.7, "c": 0.6}}[arch["op"]] + 0.01 * arch["n"]}}

    space = Space([Choice("op", ["a", "b", "c"]), IntRange("n", 1, 40)], name="toy")
    executor = {{"name": sys.argv[3], "workers": 2}}
    nf.search(space, Slow(), strategy="evolution", budget={BUDGET}, seed=0, objective="acc",
              executor=executor, journal=sys.argv[1], resume=sys.argv[2] == "resume",
              progress=False)
    """
)


def finished(path: Path) -> dict[int, str]:
    """Trial number -> key of every finished end record; asserts none finished twice."""
    out: dict[int, str] = {}
    for record in read_journal(path).records:
        if record["type"] == "end" and record["status"] == "finished":
            assert record["number"] not in out, f"trial {record['number']} finished twice"
            out[record["number"]] = record["key"]
    return out


def lines(path: Path) -> int:
    """Records written so far (the last one may be half-written)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_until(condition, timeout: float = 120.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (dead, not yet reaped by init) counts as dead
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "process"])
def test_sigkill_at_random_moments_loses_nothing(tmp_path, executor):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    journal = tmp_path / "search.jsonl"
    pids = tmp_path / "pids"
    pids.mkdir()
    driver = str(os.getpid())
    rng = random.Random(0)
    kills, before = 0, {}
    for _ in range(40):
        mode = "resume" if journal.exists() else "new"
        command = [sys.executable, str(script), str(journal), mode, executor, str(pids)]
        target = lines(journal) + rng.randint(1, 16)  # kill after 1-16 more records
        process = subprocess.Popen(command)
        assert wait_until(lambda p=process, n=target: lines(journal) >= n or p.poll() is not None)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        else:
            assert process.returncode == 0
        now = finished(journal)
        assert all(now.get(n) == key for n, key in before.items()), "a finished trial was lost"
        before = now
        if kills >= 5 and len(now) >= BUDGET // 2:
            break
    assert kills >= 5
    if executor == "process":  # the killed driver's workers died with it
        workers = {int(p.name) for p in pids.iterdir()} - {process.pid, int(driver)}
        assert workers
        assert wait_until(lambda: not [pid for pid in workers if alive(pid)], timeout=60)
    subprocess.run(
        [sys.executable, str(script), str(journal), "resume", executor, str(pids)], check=True
    )
    final = finished(journal)
    assert sorted(final) == list(range(BUDGET))  # exactly `budget` finished trials
    assert all(final[n] == key for n, key in before.items())
    records = read_journal(journal).records
    interrupted = {r["number"] for r in records if r.get("status") == "interrupted"}
    assert interrupted, "no kill landed while a trial was running"
    assert interrupted <= set(final)  # every trial running at a kill ran again and finished
