"""A crash-safe, append-only journal of a search.

The journal is a JSON Lines file: a header naming the search (space, objective, ...), then
one ``start`` record when a trial begins and one ``end`` record when it finishes, fails or
is found infeasible. Every record is one ``write`` of one line followed by ``fsync``, by the
one driver process, so:

- ``kill -9`` at any moment loses at most the record being written; a record without its
  closing newline (or that does not parse) at the end of the file is *torn*: it is dropped
  on reading and cut off before the next append, and everything before it is kept;
- there is no database to lock, and ``pandas.read_json(path, lines=True)`` reads it.

Why not SQLite in WAL mode: it is as durable, but brings locking, a binary file that only
SQLite tools read, and a schema to migrate, for a log that is only ever appended by one
writer and read whole.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasforge.errors import JournalError

__all__ = ["FORMAT", "Journal", "JournalContents", "read_journal"]

logger = logging.getLogger(__name__)

FORMAT = "nasforge.journal/1"


@dataclass
class JournalContents:
    """What a journal file holds: the search's identity and its trial records in order."""

    identity: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    #: bytes at the end of the file that belong to a torn (incomplete) record
    torn_bytes: int = 0
    #: length of the file up to the end of the last complete record
    valid_length: int = 0

    @property
    def ended(self) -> dict[int, dict[str, Any]]:
        """The last ``end`` record of each trial number."""
        return {r["number"]: r for r in self.records if r["type"] == "end"}

    @property
    def unfinished(self) -> list[dict[str, Any]]:
        """``start`` records with no ``end`` after them for the same trial and budget: the
        trials running when the search stopped."""
        running: dict[tuple[int, Any], dict[str, Any]] = {}
        for r in self.records:
            key = (r["number"], r.get("budget"))
            if r["type"] == "start":
                running[key] = r
            else:
                running.pop(key, None)
        return list(running.values())


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Read a journal, dropping a torn last record; raise :class:`JournalError` otherwise.

    Damage anywhere but at the very end is not a crash artefact, so it is an error rather
    than something to skip silently.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"journal {str(path)!r} does not exist") from None
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail: bytes after the last newline
    parsed: list[dict[str, Any]] = []
    valid_length = 0
    for index, line in enumerate(complete):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "type" not in record:
                raise ValueError("not a journal record")
        except ValueError as exc:
            if index == len(complete) - 1 and not tail:
                tail = line  # a final line that does not parse is torn too
                break
            raise JournalError(
                f"journal {str(path)!r} is damaged at line {index + 1} ({exc}); only the "
                "last record can be torn by a crash. HINT: this file was changed by "
                "something other than nasforge"
            ) from None
        parsed.append(record)
        valid_length += len(line) + 1
    torn = len(data) - valid_length
    if torn:
        logger.warning("journal %s: dropped a torn last record (%d bytes)", path, torn)
    if not parsed or parsed[0].get("type") != "header" or parsed[0].get("format") != FORMAT:
        raise JournalError(
            f"{str(path)!r} is not a nasforge journal (its first record must be a header "
            f"with format {FORMAT!r})"
        )
    return JournalContents(
        identity=parsed[0]["identity"],
        records=parsed[1:],
        torn_bytes=torn,
        valid_length=valid_length,
    )


class Journal:
    """Appends trial records to ``path`` durably; see the module docstring.

    ``identity`` says which search this is (space definition, objective, mode, ...): a new
    journal stores it, and ``resume=True`` refuses a journal whose identity differs. Without
    ``resume``, an existing non-empty journal is refused rather than overwritten.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        identity: Mapping[str, Any],
        *,
        resume: bool = False,
    ) -> None:
        self.path = Path(path)
        self.identity = _jsonable(dict(identity))
        self.contents = JournalContents(identity=self.identity)
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and not resume:
            raise JournalError(
                f"journal {str(self.path)!r} already exists. HINT: pass resume=True to "
                "continue that search, or choose a new path"
            )
        if exists:
            self.contents = read_journal(self.path)
            _check_identity(self.path, self.contents.identity, self.identity)
            if self.contents.torn_bytes:
                with open(self.path, "r+b") as fh:
                    fh.truncate(self.contents.valid_length)
                    os.fsync(fh.fileno())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if not exists:
            self._append({"type": "header", "format": FORMAT, "identity": self.identity})
            _fsync_directory(self.path.parent)

    def started(self, trial: Mapping[str, Any]) -> None:
        """Record that a trial began (``trial`` as from ``Trial.to_dict()``)."""
        self._append({**_jsonable(dict(trial)), "type": "start"})

    def ended(self, trial: Mapping[str, Any]) -> None:
        """Record a trial's outcome (finished, failed, infeasible or interrupted)."""
        self._append({**_jsonable(dict(trial)), "type": "end"})

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _append(self, record: dict[str, Any]) -> None:
        if self._fd < 0:
            raise JournalError(f"journal {str(self.path)!r} is closed")
        line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
        data = line.encode()
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (disk nearly full, signals) continues
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)
        if record["type"] != "header":
            self.contents.records.append(record)


def _check_identity(path: Path, stored: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    differing = sorted(k for k in set(stored) | set(given) if stored.get(k) != given.get(k))
    if differing:
        details = "; ".join(
            f"{k}: journal has {_short(stored.get(k))}, this search has {_short(given.get(k))}"
            for k in differing
        )
        raise JournalError(
            f"cannot resume from {str(path)!r}: it records a different search ({details}). "
            "HINT: resume with the same settings, or start a new journal"
        )


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    """Plain JSON types; non-finite floats become ``None`` (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _fsync_directory(directory: Path) -> None:
    """Make the new file's directory entry durable too (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
