"""The durable feedback log: every accepted event and catalog change, in arrival order.

The log is the service's source of truth between two model versions. A write endpoint appends its
whole batch with one ``write`` under an exclusive ``flock`` and ``fsync``s before it answers, so an
acknowledged record survives a crash of the process or the machine. Every worker (uvicorn may run
several processes) applies records by *reading* the log from its own offset, including the ones it
wrote itself: one code path, and all workers agree on every user's history.

The file is JSON lines. A crash in the middle of a write can leave a last line without its newline;
that batch was never acknowledged, so it is cut off before the next append (otherwise the next
record would be glued onto it and both would be lost on replay). The check runs under the append's
own lock, so a worker killed mid-write never costs another worker's acknowledged records.

An event may carry a client ``event_id``: the append looks for it in the log under the same lock
and leaves out an id already written, so a retried batch is logged once across workers and
restarts. The log is never rewritten; a record no reader can apply is listed, with the reason, in
the :class:`Quarantine` file next to it.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

RecordKind = Literal["event", "item"]
KINDS = ("event", "item")


@dataclass(frozen=True)
class LogRecord:
    """One line of the log: ``kind`` is ``"event"`` or ``"item"``; ``data`` its fields.

    ``offset`` and ``end`` locate a record read from the log (its first byte, and the byte just past
    its newline); they are -1 for a record not read yet, and not part of equality.
    """

    kind: RecordKind
    data: dict[str, Any]
    offset: int = field(default=-1, compare=False)
    end: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class Unreadable:
    """A line of the log that is not a record (a hand edit, a tool that wrote it wrongly)."""

    offset: int
    end: int
    reason: str


@dataclass(frozen=True)
class Appended:
    """What an append did: the log's size after it, and how many records it left out because
    their ``event_id`` was in the log already."""

    offset: int
    duplicates: int = 0


@contextmanager
def _flocked(path: Path, mode: str) -> Iterator[Any]:
    with path.open(mode) as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield f
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class FeedbackLog:
    """Append-only JSON-lines file shared by all workers of a service (and by ``retrain``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        self.quarantine = Quarantine(self.path.with_suffix(".quarantine.jsonl"))
        self._mutex = threading.Lock()  # flock does not order the threads of one process
        self._event_ids: set[str] = set()
        self._ids_end = 0  # the log is scanned for event ids up to here

    def append(self, records: list[LogRecord]) -> Appended:
        """Write ``records`` durably (one write, then fsync), less any event whose ``event_id`` the
        log (or an earlier record of the batch) holds already."""
        if not records:
            return Appended(self.size())
        with self._mutex:
            self._scan_event_ids()  # most of the log, before taking the lock other workers wait on
            with _flocked(self.path, "a+b") as f:
                _cut_unfinished_line(f)
                self._scan_event_ids()  # what other workers wrote since
                fresh = self._unseen(records)
                if fresh:
                    f.write(b"".join(_encode(r) for r in fresh))
                    f.flush()
                    os.fsync(f.fileno())
                end = f.seek(0, os.SEEK_END)
            self._ids_end = end
            return Appended(end, duplicates=len(records) - len(fresh))

    def _unseen(self, records: list[LogRecord]) -> list[LogRecord]:
        """The records to write; remembers their event ids (the caller writes them)."""
        fresh = []
        for record in records:
            event_id = record.data.get("event_id") if record.kind == "event" else None
            if event_id is not None:
                if event_id in self._event_ids:
                    continue
                self._event_ids.add(event_id)
            fresh.append(record)
        return fresh

    def _scan_event_ids(self) -> None:
        """Add the event ids of the complete lines after the last scan (a cheap byte test first:
        most lines carry none)."""
        with self.path.open("rb") as f:
            f.seek(self._ids_end)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].split(b"\n"):
            if b'"event_id"' not in line:
                continue
            try:
                event_id = json.loads(line).get("event_id")
            except (ValueError, AttributeError):
                continue  # not a record: the readers quarantine it
            if isinstance(event_id, str):
                self._event_ids.add(event_id)
        self._ids_end += end

    def repair(self) -> int:
        """Cut an unfinished last line (a write a crash interrupted); returns the bytes removed."""
        with _flocked(self.path, "r+b") as f:
            return _cut_unfinished_line(f)

    def size(self) -> int:
        return self.path.stat().st_size

    def entries(self, offset: int = 0) -> tuple[list[LogRecord | Unreadable], int]:
        """Every complete line from byte ``offset`` on, as a record or as an :class:`Unreadable`
        with the reason, and the offset just past the last of them.

        A line another process is still writing has no newline yet: it is left for the next read.
        """
        with self.path.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        entries: list[LogRecord | Unreadable] = []
        start = 0
        while start < end:
            stop = chunk.index(b"\n", start) + 1
            if chunk[start:stop].strip():
                entries.append(_parse(chunk[start:stop], offset + start, offset + stop))
            start = stop
        return entries, offset + end

    def read(self, offset: int = 0) -> tuple[list[LogRecord], int]:
        """The records from byte ``offset`` on, and the offset just past the last of them; a line
        that is not a record is an error naming the file (use :meth:`entries` to step over it)."""
        entries, end = self.entries(offset)
        records = []
        for number, entry in enumerate(entries, start=1):
            if isinstance(entry, Unreadable):
                raise ValueError(
                    f"{self.path}: record {number} after byte {offset} (at byte {entry.offset}) "
                    f"is not a log record: {entry.reason}"
                )
            records.append(entry)
        return records, end

    def line(self, offset: int, end: int) -> str:
        """The text of the line at ``offset`` (for the quarantine file; bad bytes escaped)."""
        with self.path.open("rb") as f:
            f.seek(offset)
            return f.read(end - offset).rstrip(b"\n").decode("utf-8", "backslashreplace")


class Quarantine:
    """Log records that cannot be applied, each with the reason, keyed by their log offset.

    Every reader of the log (each worker, ``retrain``) skips the offsets listed here, so a record
    set aside by one of them counts for none of them, and the operator finds it here with its text.
    Adding is idempotent: workers that meet the same bad record list it once.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offsets: frozenset[int] = frozenset()
        self._size = 0

    def offsets(self) -> frozenset[int]:
        """The quarantined log offsets (the file is read again only when it has grown)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return frozenset()
        if size != self._size:
            with self.path.open("rb") as f:
                self._offsets = frozenset(_offsets(f.read()))
            self._size = size
        return self._offsets

    def add(self, offset: int, line: str, reason: str) -> bool:
        """List the record at ``offset``; False when it is listed already."""
        self.path.touch(exist_ok=True)
        with _flocked(self.path, "a+b") as f:
            f.seek(0)
            if offset in _offsets(f.read()):
                return False
            entry = {
                "offset": offset,
                "reason": reason,
                "record": line,
                "quarantined": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            f.write(json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        return True


def _offsets(content: bytes) -> Iterator[int]:
    for line in content.splitlines():
        try:
            yield int(json.loads(line)["offset"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash: its record is simply listed again


def _encode(record: LogRecord) -> bytes:
    """One log line; ``allow_nan=False`` keeps the log standard JSON whatever a caller passes."""
    line = json.dumps({"kind": record.kind, **record.data}, ensure_ascii=False, allow_nan=False)
    return line.encode("utf-8") + b"\n"


def _parse(line: bytes, offset: int, end: int) -> LogRecord | Unreadable:
    try:
        raw = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bytes not UTF-8
        return Unreadable(offset, end, f"not JSON: {exc}")
    if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
        return Unreadable(offset, end, 'not a log record: it needs "kind": "event" or "item"')
    kind = raw.pop("kind")
    return LogRecord(kind, raw, offset, end)


def _cut_unfinished_line(f: Any) -> int:
    """Truncate ``f`` (locked) after its last newline; returns the bytes removed."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return 0
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return 0
    keep = _last_newline_end(f, size)
    f.truncate(keep)
    f.flush()
    os.fsync(f.fileno())
    return size - keep


def _last_newline_end(f: Any, size: int, block: int = 1 << 16) -> int:
    """Offset just past the last ``\\n`` of the file (0 if none), reading backwards in blocks."""
    end = size
    while end > 0:
        start = max(0, end - block)
        f.seek(start)
        data = f.read(end - start)
        at = data.rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0
