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
    first_end = log.append([event("a"), event("b")]).offset
    end = log.append([LogRecord("item", {"item_id": "x", "title": "Thé vert 🍵"})]).offset
    records, offset = log.read()
    assert [r.kind for r in records] == ["event", "event", "item"] and offset == end
    assert records[2].data["title"] == "Thé vert 🍵"
    later, offset = log.read(first_end)
    assert [r.data.get("item_id") for r in later] == ["x"] and offset == end
    assert log.read(end) == ([], end)


def test_a_line_still_being_written_is_left_for_the_next_read(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "log.jsonl")
    end = log.append([event("a")]).offset
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
    end = log.append([event("a")]).offset
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


def test_an_event_id_is_written_once_across_writers_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    one, two = FeedbackLog(path), FeedbackLog(path)  # two workers

    def batch(*ids: str) -> list[LogRecord]:
        return [LogRecord("event", {"user_id": "u", "item_id": "i1", "event_id": i}) for i in ids]

    assert one.append(batch("e1", "e2", "e1")).duplicates == 1  # repeated within the batch
    assert two.append(batch("e2", "e3")).duplicates == 1  # written by the other worker
    restarted = FeedbackLog(path)
    assert restarted.append(batch("e1", "e2", "e3")).duplicates == 3
    assert restarted.append([event("no id"), event("no id")]).duplicates == 0
    ids = [r.data.get("event_id") for r in restarted.read()[0]]
    assert ids == ["e1", "e2", "e3", None, None]


def test_an_append_after_a_write_cut_by_a_crash_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    FeedbackLog(path).append([event("a")])
    with path.open("ab") as f:  # a worker killed in the middle of its write
        f.write(b'{"kind": "event", "user_id": "lo')
    FeedbackLog(path).append([event("b")])  # another worker, which never ran repair()
    records, end = FeedbackLog(path).read()
    assert [r.data["user_id"] for r in records] == ["a", "b"] and end == path.stat().st_size


def test_entries_step_over_lines_that_are_not_records(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "log.jsonl")
    log.append([event("a")])
    with log.path.open("ab") as f:
        f.write(b'{"kind": "ev\n[1, 2]\n{"kind": "other"}\n\xff\xfe\n')
    log.append([event("b")])
    entries, end = log.entries()
    assert [type(e).__name__ for e in entries] == ["LogRecord"] + ["Unreadable"] * 4 + ["LogRecord"]
    assert end == log.size() and entries[-1].end == end
    bad = entries[1]
    assert "not JSON" in bad.reason and log.line(bad.offset, bad.end) == '{"kind": "ev'
    assert "kind" in entries[3].reason


def test_the_quarantine_lists_a_record_once(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    assert log.quarantine.path.name == "feedback.quarantine.jsonl"
    assert log.quarantine.offsets() == frozenset()
    assert log.quarantine.add(10, "line", "why")
    assert not FeedbackLog(log.path).quarantine.add(10, "line", "why again")  # another worker
    assert log.quarantine.add(30, "other", "why")
    assert log.quarantine.offsets() == {10, 30}
    assert len(log.quarantine.path.read_text().splitlines()) == 2
