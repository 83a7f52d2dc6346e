"""The journal (nasforge.nas.journal): records and how they are stored, torn records and
damage, what the errors say, and resuming, even after a SIGKILL."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from nasforge.errors import JournalError
from nasforge.nas.journal import FORMAT, Journal, read_journal

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


# --- torn records, damage, error messages and storage in detail -----------------------------
def _journal(path, *records):
    with Journal(path, IDENTITY) as journal:
        for number in records:
            journal.ended({"number": number, "status": "finished"})
    return path.read_bytes()


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(JournalError) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_a_final_line_that_does_not_parse_is_torn_even_with_its_newline(tmp_path, caplog):
    path = tmp_path / "j.jsonl"
    intact = _journal(path, 0, 1)
    path.write_bytes(intact + b'{"type":"end","numb\n')
    with caplog.at_level(logging.WARNING, logger="nasforge.nas.journal"):
        contents = read_journal(path)
    assert [r["number"] for r in contents.records] == [0, 1]
    assert (contents.torn_bytes, contents.valid_length) == (20, len(intact))
    assert caplog.messages == [f"journal {path}: dropped a torn last record (20 bytes)"]
    with Journal(path, IDENTITY, resume=True) as journal:
        journal.ended({"number": 2})
    assert path.read_bytes().startswith(intact)
    assert [r["number"] for r in read_journal(path).records] == [0, 1, 2]


def test_an_intact_journal_has_nothing_torn(tmp_path, caplog):
    path = tmp_path / "j.jsonl"
    intact = _journal(path, 0)
    with caplog.at_level(logging.WARNING, logger="nasforge.nas.journal"):
        contents = read_journal(path)
    assert (contents.torn_bytes, contents.valid_length) == (0, len(intact))
    assert caplog.messages == []


@pytest.mark.parametrize("line", [b'{"number": 1}', b"[1, 2]", b'"type"', b"garbage"])
def test_a_line_that_is_not_a_record_before_the_end_is_damage(tmp_path, line):
    path = tmp_path / "j.jsonl"
    lines = _journal(path, 0, 1, 2).split(b"\n")
    lines[2] = line
    path.write_bytes(b"\n".join(lines))
    message = _error(read_journal, path)
    assert message.startswith(f"journal {str(path)!r} is damaged at line 3 (")
    assert message.endswith(
        "); only the last record can be torn by a crash. HINT: this file was changed by "
        "something other than nasforge"
    )
    if line.startswith((b"{", b"[", b'"')):
        assert "(not a journal record)" in message


@pytest.mark.parametrize(
    "first",
    [
        {"type": "header", "format": "nasforge.journal/2", "identity": {}},
        {"type": "start", "format": FORMAT, "identity": {}},
        {"type": "header", "identity": {}},
    ],
)
def test_the_first_record_must_be_a_header_in_this_format(tmp_path, first):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(first) + "\n")
    assert _error(read_journal, path) == (
        f"{str(path)!r} is not a nasforge journal (its first record must be a header with "
        "format 'nasforge.journal/1')"
    )


def test_an_empty_or_missing_file_is_not_a_journal(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert "is not a nasforge journal" in _error(read_journal, path)
    missing = tmp_path / "missing.jsonl"
    assert _error(read_journal, missing) == f"journal {str(missing)!r} does not exist"


def test_resume_names_every_setting_that_differs(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal(path, IDENTITY).close()
    other = {"space": {"x": [1, 2]}, "objective": "val_acc", "mode": "min", "seed": 1}
    assert _error(Journal, path, other, resume=True) == (
        f"cannot resume from {str(path)!r}: it records a different search (mode: journal has "
        '"max", this search has "min"; seed: journal has null, this search has 1; space: '
        'journal has {"x": [1, 2, 3]}, this search has {"x": [1, 2]}). HINT: resume with the '
        "same settings, or start a new journal"
    )
    fewer = {"objective": "val_acc", "mode": "max"}
    assert "space: journal has" in _error(Journal, path, fewer, resume=True)


def test_long_settings_are_cut_to_80_characters_with_sorted_keys(tmp_path):
    path = tmp_path / "j.jsonl"
    stored = {"space": {"b": 1, "a": "x" * 200}, "exact": "y" * 78, "over": "z" * 79}
    Journal(path, stored).close()
    given = {"space": {"b": 2, "a": "x"}, "exact": "w" * 78, "over": "v" * 79}
    message = _error(Journal, path, given, resume=True)
    assert f'exact: journal has "{"y" * 78}", this search has "{"w" * 78}"' in message
    assert f'over: journal has "{"z" * 76}..., this search has "{"v" * 76}...' in message
    assert 'space: journal has {"a": "' + "x" * 70 + "..., this search has " in message
    assert 'this search has {"a": "x", "b": 2})' in message


def test_an_existing_journal_is_refused_without_resume(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal(path, IDENTITY).close()
    assert _error(Journal, path, IDENTITY) == (
        f"journal {str(path)!r} already exists. HINT: pass resume=True to continue that "
        "search, or choose a new path"
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with Journal(empty, IDENTITY) as journal:  # an empty file is not a journal yet
        journal.started({"number": 0})
    assert read_journal(empty).identity == IDENTITY


def test_a_new_journal_is_created_with_its_directories_and_a_header(tmp_path):
    path = tmp_path / "a" / "b" / "search.jsonl"
    with Journal(path, {"n": (1, 2), 3: float("inf")}) as journal:
        assert journal.contents.records == []
        journal.started({"number": 0, "budget": 1})
        journal.ended({"number": 0, "budget": 1, "metrics": {"acc": math.nan}})
        assert [r["type"] for r in journal.contents.records] == ["start", "end"]
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {"type": "header", "format": FORMAT, "identity": {"n": [1, 2], "3": None}}
    assert read_journal(path).identity == {"n": [1, 2], "3": None}


def test_records_are_compact_json_lines_of_plain_values(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, IDENTITY) as journal:
        journal.ended({"number": 0, "key": ("a", 1), "path": tmp_path, "ok": True, "n": None})
    line = path.read_text().splitlines()[1]
    assert line == (
        '{"number":0,"key":["a",1],"path":' + json.dumps(str(tmp_path)) + ',"ok":true,'
        '"n":null,"type":"end"}'
    )


def test_resuming_appends_to_the_records_already_there(tmp_path):
    path = tmp_path / "j.jsonl"
    _journal(path, 0)
    with Journal(path, IDENTITY, resume=True) as journal:
        assert [r["number"] for r in journal.contents.records] == [0]
        journal.started({"number": 1})
        assert [r["type"] for r in journal.contents.records] == ["end", "start"]
    lines = path.read_text().splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["header", "end", "start"]


def test_a_closed_journal_refuses_records_and_closes_once(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path, IDENTITY)
    journal.close()
    journal.close()
    assert _error(journal.ended, {"number": 0}) == f"journal {str(path)!r} is closed"


def test_ended_and_unfinished_follow_the_last_record_of_each_trial(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, IDENTITY) as journal:
        journal.started({"number": 0})
        journal.ended({"number": 0, "status": "failed"})
        journal.started({"number": 0})
        journal.ended({"number": 0, "status": "finished"})
        journal.started({"number": 1})
    contents = read_journal(path)
    assert contents.ended[0]["status"] == "finished"
    assert [r["number"] for r in contents.unfinished] == [1]


def test_a_new_journal_knows_its_identity_and_is_an_ordinary_file(tmp_path):
    path = tmp_path / "j.jsonl"
    umask = os.umask(0o022)
    os.umask(umask)
    with Journal(path, IDENTITY) as journal:
        assert journal.contents.identity == IDENTITY
        assert journal.contents.records == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~umask


def test_a_one_byte_file_is_not_empty(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"\n")
    with pytest.raises(JournalError, match="already exists"):
        Journal(path, IDENTITY)


def test_a_journal_works_on_whatever_descriptor_it_gets(tmp_path):
    """Even descriptor 0, which a process without standard input hands out first."""
    try:
        saved = os.dup(0)
        os.close(0)
    except OSError:  # no standard input here: 0 is free already
        saved = None
    try:
        journal = Journal(tmp_path / "j.jsonl", IDENTITY)
        fd = journal._fd
        journal.ended({"number": 0})
        journal.close()
        reopened = os.open(os.devnull, os.O_RDONLY)  # 0 again if the journal closed it
        os.close(reopened)
    finally:
        if saved is not None:
            os.dup2(saved, 0)
            os.close(saved)
    assert fd == 0 and reopened == 0
    assert [r["number"] for r in read_journal(tmp_path / "j.jsonl").records] == [0]


def test_a_short_write_goes_on_until_the_record_is_written(tmp_path, monkeypatch):
    """A write may take fewer bytes than asked (a disk nearly full, a signal)."""
    import nasforge.nas.journal as module

    class ShortWrites:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def write(fd, data):
            return os.write(fd, bytes(data[:5]))

    monkeypatch.setattr(module, "os", ShortWrites())
    path = tmp_path / "j.jsonl"
    with Journal(path, IDENTITY) as journal:
        journal.ended({"number": 0, "key": "x" * 50})
    monkeypatch.undo()
    contents = read_journal(path)
    assert (contents.identity, contents.torn_bytes) == (IDENTITY, 0)
    assert contents.records == [{"number": 0, "key": "x" * 50, "type": "end"}]
