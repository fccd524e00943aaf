"""The durable log: appends, reads from an offset, partial lines, crash repair."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from shopaug.serve.feedback import FeedbackLog, LogRecord


def event(user: str, item: str = "i1") -> LogRecord:
    return LogRecord("event", {"user_id": user, "item_id": item})


def test_append_then_read_from_an_offset(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "log.jsonl")
    first_end = log.append([event("a"), event("b")])
    end = log.append([LogRecord("item", {"item_id": "x", "title": "Thé vert 🍵"})])
    records, offset = log.read()
    assert [r.kind for r in records] == ["event", "event", "item"] and offset == end
    assert records[2].data["title"] == "Thé vert 🍵"
    later, offset = log.read(first_end)
    assert [r.data.get("item_id") for r in later] == ["x"] and offset == end
    assert log.read(end) == ([], end)


def test_a_line_still_being_written_is_left_for_the_next_read(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "log.jsonl")
    end = log.append([event("a")])
    with log.path.open("ab") as f:
        f.write(b'{"kind": "event", "user_id": "b"')
    records, offset = log.read()
    assert len(records) == 1 and offset == end
    with log.path.open("ab") as f:
        f.write(b', "item_id": "i1"}\n')
    records, _ = log.read(offset)
    assert records == [event("b")]


def test_repair_cuts_an_unfinished_last_line_only(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "log.jsonl")
    assert log.repair() == 0
    end = log.append([event("a")])
    assert log.repair() == 0 and log.size() == end
    with log.path.open("ab") as f:
        f.write(b'{"kind": "ev')
    assert log.repair() == len(b'{"kind": "ev')
    log.append([event("b")])
    assert [r.data["user_id"] for r in log.read()[0]] == ["a", "b"]


def test_a_corrupt_record_is_an_error_naming_the_file(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "log.jsonl")
    log.path.write_text('{"user_id": "no kind"}\n')
    with pytest.raises(ValueError, match=r"log\.jsonl"):
        log.read()


def _append_many(path: str, worker: int) -> None:
    log = FeedbackLog(path)
    for batch in range(50):
        log.append([event(f"{worker}-{batch}-{i}") for i in range(3)])


def test_concurrent_writers_never_interleave_records(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    FeedbackLog(path)
    workers = [
        multiprocessing.get_context("fork").Process(target=_append_many, args=(str(path), w))
        for w in range(3)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    records, _ = FeedbackLog(path).read()
    users = [r.data["user_id"] for r in records]
    assert len(users) == len(set(users)) == 3 * 50 * 3
