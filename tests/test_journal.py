import json
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from nasforge.errors import JournalError
from nasforge.nas.journal import Journal, read_journal

IDENTITY = {"space": {"x": [1, 2, 3]}, "objective": "val_acc", "mode": "max"}


def _lines(path):
    """Records written so far (the last one may be half-written)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _trial(number, status="finished", acc=0.5):
    return {"number": number, "key": f"x={number}", "status": status, "metrics": {"acc": acc}}


def _three_records(path):
    with Journal(path, IDENTITY) as journal:
        journal.started(_trial(0, "running"))
        journal.ended(_trial(0))
        journal.started(_trial(1, "running"))


def test_records_round_trip(tmp_path):
    path = tmp_path / "search.jsonl"
    _three_records(path)
    contents = read_journal(path)
    assert contents.identity == IDENTITY
    assert [r["type"] for r in contents.records] == ["start", "end", "start"]
    assert set(contents.ended) == {0}
    assert [r["number"] for r in contents.unfinished] == [1]


def test_pandas_can_read_the_journal(tmp_path):
    pandas = pytest.importorskip("pandas")
    path = tmp_path / "search.jsonl"
    _three_records(path)
    frame = pandas.read_json(path, lines=True)
    assert list(frame["type"]) == ["header", "start", "end", "start"]


def test_unfinished_tells_budgets_apart(tmp_path):
    path = tmp_path / "search.jsonl"
    with Journal(path, IDENTITY) as journal:
        journal.started({**_trial(0, "running"), "budget": 1})
        journal.ended({**_trial(0), "budget": 1})
        journal.started({**_trial(0, "running"), "budget": 3})  # promoted, then the crash
    (running,) = read_journal(path).unfinished
    assert (running["number"], running["budget"]) == (0, 3)


def test_non_finite_metrics_are_stored_as_null(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, IDENTITY) as journal:
        journal.ended(_trial(0, "failed", acc=float("nan")))
    assert read_journal(path).records[0]["metrics"]["acc"] is None


def test_an_existing_journal_is_never_overwritten(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal(path, IDENTITY).close()
    with pytest.raises(JournalError, match=r"already exists.*resume=True"):
        Journal(path, IDENTITY)


def test_resume_refuses_a_different_search(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal(path, IDENTITY).close()
    other = {**IDENTITY, "objective": "val_loss"}
    with pytest.raises(JournalError, match='objective: journal has "val_acc"'):
        Journal(path, other, resume=True)


@pytest.mark.parametrize("tail", [b'{"type":"end","num', b'{"type":"end"}', b"\x00\x00\x00"])
def test_a_torn_last_record_is_dropped_and_cut_before_appending(tmp_path, tail):
    path = tmp_path / "j.jsonl"
    with Journal(path, IDENTITY) as journal:
        journal.ended(_trial(0))
    intact = path.read_bytes()
    path.write_bytes(intact + tail)
    contents = read_journal(path)
    assert contents.torn_bytes == len(tail)
    assert [r["number"] for r in contents.records] == [0]
    with Journal(path, IDENTITY, resume=True) as journal:
        journal.ended(_trial(1))
    assert path.read_bytes().startswith(intact)
    assert [r["number"] for r in read_journal(path).records] == [0, 1]


def test_damage_before_the_last_record_is_an_error(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, IDENTITY) as journal:
        journal.ended(_trial(0))
        journal.ended(_trial(1))
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"garbage"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalError, match="damaged at line 2"):
        read_journal(path)


def test_a_foreign_file_is_not_a_journal(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"type": "row", "x": 1}) + "\n")
    with pytest.raises(JournalError, match="not a nasforge journal"):
        read_journal(path)
    with pytest.raises(JournalError, match="does not exist"):
        read_journal(tmp_path / "missing.jsonl")


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_written_before(tmp_path):
    """A writer is killed with SIGKILL 5 times while appending; each restart resumes."""
    path = tmp_path / "killed.jsonl"
    writer = textwrap.dedent(
        f"""
        import sys
        from nasforge.nas.journal import Journal, read_journal
        identity = {IDENTITY!r}
        journal = Journal(sys.argv[1], identity, resume=True)
        start = len(journal.contents.ended)
        for number in range(start, start + 100000):
            journal.started({{"number": number, "status": "running", "pad": "x" * 3000}})
            journal.ended({{"number": number, "status": "finished", "pad": "y" * 3000}})
        """
    )
    rng = random.Random(0)
    seen_before_kill = 0
    for _ in range(5):
        target = _lines(path) + rng.randint(1, 400)  # kill after 1-400 more records
        process = subprocess.Popen([sys.executable, "-c", writer, str(path)])
        deadline = time.monotonic() + 120
        while _lines(path) < target:
            assert process.poll() is None and time.monotonic() < deadline, "the writer stopped"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        contents = read_journal(path)
        ended = sorted(contents.ended)
        assert ended == list(range(len(ended)))  # none lost, none twice
        assert len(ended) >= seen_before_kill  # everything from earlier runs is still there
        seen_before_kill = len(ended)
    assert seen_before_kill > 0
