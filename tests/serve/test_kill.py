"""SIGKILLs of a two-worker service while a client posts events with event ids and retries what
was not acknowledged: every acknowledged event ends up in the log exactly once, no line is
corrupt, and the restarted workers agree on the state. Loopback only, bounded to well under a
minute."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from shopaug.serve.bundle import RunLayout
from shopaug.serve.feedback import FeedbackLog

from .conftest import API_KEY, LiveService, free_port


class Writer(threading.Thread):
    """Posts batches of five events, each with its own event id, one batch at a time; a batch
    that gets no 201 (the worker died, the service is down) is sent again, as it is."""

    def __init__(self, url: str, item_ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.item_ids = item_ids
        self.acknowledged: list[str] = []
        self.answers: Counter[int] = Counter()
        self.halt = threading.Event()

    def batch(self, number: int) -> list[dict[str, str]]:
        return [
            {
                "event_id": f"b{number}-{i}",
                "user_id": f"killed-{number % 13}",
                "item_id": self.item_ids[(number + i) % len(self.item_ids)],
            }
            for i in range(5)
        ]

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            number = 0
            while not self.halt.is_set():
                events = self.batch(number)
                if self.post(client, events):
                    self.acknowledged.extend(e["event_id"] for e in events)
                    number += 1

    def post(self, client: httpx.Client, events: list[dict[str, str]]) -> bool:
        try:
            response = client.post(
                "/events", json={"events": events}, headers={"X-API-Key": API_KEY}
            )
        except httpx.TransportError:
            time.sleep(0.05)
            return False
        self.answers[response.status_code] += 1
        return response.status_code == 201

    def progress(self, batches: int, timeout: float = 20.0) -> None:
        """Wait until ``batches`` more batches are acknowledged."""
        target = len(self.acknowledged) + 5 * batches
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < target:
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.02)


def test_sigkills_lose_and_duplicate_no_acknowledged_event(
    service_dir: Path, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"  # where `shopaug serve` keeps its metrics folder
    temp.mkdir()
    service = LiveService(service_dir, free_port(), workers=2, env={"TMPDIR": str(temp)})
    service.start()
    with service.client() as c:
        popular = c.get("/recommend/nobody", params={"k": 50}).json()["items"]
    writer = Writer(service.url, [item["item_id"] for item in popular])
    writer.start()
    try:
        for _ in range(2):
            writer.progress(20)
            os.kill(service.worker_pids()[0], signal.SIGKILL)  # the master starts another
            writer.progress(20)
            service.kill()  # master and workers at once
            assert len(list(temp.glob("shopaug-metrics-*"))) == 1  # no cleanup ran
            service.start()  # removes the dead service's metrics folder
            writer.progress(20)
    finally:
        writer.halt.set()
        writer.join(30)
    log = FeedbackLog(RunLayout(service_dir).log_path)
    try:
        states = {health(service.url) for _ in range(8)}  # new connections: either worker
    finally:
        service.stop()

    records, end = log.read()  # raises on any corrupt line
    assert end == log.size() and log.path.read_bytes().endswith(b"\n")
    counts = Counter(r.data["event_id"] for r in records if r.kind == "event")
    assert len(writer.acknowledged) >= 5 * 20 * 6
    assert set(writer.acknowledged) <= set(counts)  # none lost
    assert max(counts.values()) == 1  # none twice, retries included
    assert not [status for status in writer.answers if status >= 500]
    assert len(states) == 1 and states.pop()[0] == end  # the workers agree
    assert list(temp.glob("shopaug-metrics-*")) == []


def health(url: str) -> tuple[int, int]:
    body = httpx.get(f"{url}/health", timeout=10.0).json()
    return body["log_offset"], body["users"]
