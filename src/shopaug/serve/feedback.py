"""The durable feedback log: every accepted event and catalog change, in arrival order.

The log is the service's source of truth between two model versions. A write endpoint appends its
whole batch with one ``write`` under an exclusive ``flock`` and ``fsync``s before it answers, so an
acknowledged record survives a crash of the process or the machine. Every worker (uvicorn may run
several processes) applies records by *reading* the log from its own offset, including the ones it
wrote itself: one code path, and all workers agree on every user's history.

The file is JSON lines. A crash in the middle of a write can leave a last line without its newline;
that batch was never acknowledged, so :meth:`FeedbackLog.repair` cuts it off before new appends
(otherwise the next record would be glued onto it and both would be lost on replay).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

RecordKind = Literal["event", "item"]


@dataclass(frozen=True)
class LogRecord:
    """One line of the log: ``kind`` is ``"event"`` or ``"item"``; ``data`` its fields."""

    kind: RecordKind
    data: dict[str, Any]


class FeedbackLog:
    """Append-only JSON-lines file shared by all workers of a service (and by ``retrain``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)

    @contextmanager
    def _locked(self, mode: str) -> Iterator[Any]:
        with self.path.open(mode) as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield f
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def append(self, records: list[LogRecord]) -> int:
        """Write ``records`` durably (one write, then fsync); returns the log's size after them."""
        if not records:
            return self.size()
        payload = "".join(
            json.dumps({"kind": r.kind, **r.data}, ensure_ascii=False) + "\n" for r in records
        ).encode("utf-8")
        with self._locked("ab") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
            return f.tell()

    def repair(self) -> int:
        """Cut an unfinished last line (a write a crash interrupted); returns the bytes removed."""
        with self._locked("r+b") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            f.seek(max(0, size - 1))
            if f.read(1) == b"\n":
                return 0
            keep = _last_newline_end(f, size)
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
            return size - keep

    def size(self) -> int:
        return self.path.stat().st_size

    def read(self, offset: int = 0) -> tuple[list[LogRecord], int]:
        """Complete records from byte ``offset`` on, and the offset just past the last of them.

        A line another process is still writing has no newline yet: it is left for the next read.
        """
        with self.path.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        records = []
        for number, line in enumerate(chunk[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                kind = raw.pop("kind")
            except (json.JSONDecodeError, KeyError) as exc:
                raise ValueError(
                    f"{self.path}: record {number} after byte {offset} is not a log record: {exc}"
                ) from exc
            records.append(LogRecord(kind, raw))
        return records, offset + end


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
