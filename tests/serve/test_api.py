"""The API's contract, in process: limits, error bodies as the OpenAPI schema declares them,
idempotent events, and item encoding off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shopaug.serve.app import MAX_BODY_BYTES
from shopaug.serve.feedback import FeedbackLog

from .conftest import API_KEY

WRITE = {"X-API-Key": API_KEY}


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def known_item(app: FastAPI) -> str:
    return str(app.state.service.state.items.at[0, "item_id"])


def fields_at_fault(response: httpx.Response) -> list[str]:
    """The ``loc`` of each error of a 422, dotted."""
    assert response.status_code == 422, response.text
    return [".".join(str(p) for p in error["loc"]) for error in response.json()["detail"]]


def call_asgi(app: FastAPI, path: str, chunks: Iterator[bytes], headers: list) -> tuple[int, int]:
    """POST a body to ``app`` chunk by chunk as a server would pass a chunked upload; returns
    the status and how many chunks the app read."""
    read = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    return status, read


def test_a_streamed_body_over_the_cap_is_refused_without_being_read_whole(app: FastAPI) -> None:
    megabyte = b" " * (1 << 20)
    upload = (megabyte for _ in range(200))  # 200 MB of blanks, sent without a length
    status, read = call_asgi(app, "/recommend", upload, [(b"transfer-encoding", b"chunked")])
    assert (status, read) == (413, MAX_BODY_BYTES // len(megabyte) + 1)
    small = iter([b'{"items": [], ', b'"k": 3}'])
    assert call_asgi(app, "/recommend", small, []) == (200, 2)


def test_a_declared_body_over_the_cap_is_refused_before_it_is_read(app: FastAPI) -> None:
    header = [(b"content-length", str(MAX_BODY_BYTES + 1).encode())]
    status, read = call_asgi(app, "/events", iter([b"{}"]), header)
    assert (status, read) == (413, 0)


def test_a_body_that_is_not_utf8_is_a_422_naming_the_byte(client: TestClient) -> None:
    body = b'{"items": ["caf\xe9"], "k": 3}'
    response = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert fields_at_fault(response) == ["body.15"]  # where the Latin-1 é is
    assert "not valid UTF-8" in response.json()["detail"][0]["msg"]


def test_bad_values_are_422s_naming_the_field(client: TestClient, app: FastAPI) -> None:
    item = known_item(app)
    json_headers = {**WRITE, "content-type": "application/json"}
    late = {"user_id": "u", "item_id": item, "timestamp": "3000-01-01T00:00:00Z"}
    cases = [
        ("body.k", client.post("/recommend", json={"items": [], "k": True})),
        ("body.exclude_seen", client.post("/recommend", json={"exclude_seen": 1})),
        ("body.events.0.timestamp", client.post("/events", json={"events": [late]}, headers=WRITE)),
        ("query.max_price", client.get("/search", params={"q": "mug", "max_price": "nan"})),
        ("path.user_id", client.get("/recommend/%20%20")),
    ]
    for price in [b"Infinity", b"-Infinity", b"NaN", b"1e309"]:
        body = b'{"items": [{"item_id": "n", "title": "t", "price": ' + price + b"}]}"
        response = client.post("/items", content=body, headers=json_headers)
        cases.append(("body.items.0.price", response))
    for field, response in cases:
        assert field in fields_at_fault(response), field
    assert FeedbackLog(app.state.service.log.path).size() == 0  # nothing was logged


def test_item_text_per_request_is_bounded(client: TestClient) -> None:
    items = [{"item_id": f"long-{i}", "title": "t", "description": "x" * 10_000} for i in range(11)]
    response = client.post("/items", json={"items": items}, headers=WRITE)
    assert fields_at_fault(response) == ["body.items"]
    assert "100,000 characters" in response.json()["detail"][0]["msg"]


def test_errors_have_the_bodies_the_openapi_schema_declares(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    declared = {
        ("/events", "post"): {"201", "401", "413", "422", "500", "503"},
        ("/items", "post"): {"201", "401", "413", "422", "500", "503"},
        ("/admin/reload", "post"): {"200", "401", "413", "500", "503"},
        ("/similar/{item_id}", "get"): {"200", "404", "422", "500"},
        ("/search", "get"): {"200", "422", "500", "503"},
        ("/recommend", "post"): {"200", "413", "422", "500"},
        ("/health", "get"): {"200", "500"},
    }
    for (path, method), statuses in declared.items():
        assert set(paths[path][method]["responses"]) == statuses, (path, method)
    problem = spec["components"]["schemas"]["Problem"]
    assert problem["required"] == ["detail"]
    invalid = client.post("/recommend", json={"k": 0, "colour": 1})
    assert invalid.status_code == 422
    for error in invalid.json()["detail"]:
        assert set(error) == {"loc", "msg", "type"}  # ValidationError of FastAPI's schema
    for response in [
        client.post("/events", json={"events": []}),
        client.get("/similar/no-such-item"),
        client.get("/recommend/u", headers={"content-length": str(MAX_BODY_BYTES + 1)}),
    ]:
        assert response.status_code in (401, 404, 413)
        assert set(response.json()) == {"detail"} and isinstance(response.json()["detail"], str)


def test_a_client_event_id_is_acknowledged_again_but_applied_once(
    client: TestClient, app: FastAPI
) -> None:
    item = known_item(app)
    state = app.state.service.state
    popularity = state.popularity[0]
    events = [{"event_id": "e-1", "user_id": "idem", "item_id": item, "event": "purchase"}]
    first = client.post("/events", json={"events": events}, headers=WRITE).json()
    retry = client.post("/events", json={"events": events * 2}, headers=WRITE).json()
    assert (first["accepted"], first["duplicates"]) == (1, 0)
    assert (retry["accepted"], retry["duplicates"]) == (2, 2)
    assert retry["log_offset"] == first["log_offset"]
    assert state.histories["idem"] == [0] and state.popularity[0] == popularity + 1
    with restarted(app) as again:  # a new worker derives the ids it has seen from the log
        assert again.post("/events", json={"events": events}, headers=WRITE).json()["duplicates"]
        assert again.get("/recommend/idem").json()["source"] == "model"
    assert len(FeedbackLog(app.state.service.log.path).read()[0]) == 1


def restarted(app: FastAPI) -> TestClient:
    """A restarted worker over the same run folder."""
    from shopaug.serve.app import create_app

    service = app.state.service
    return TestClient(create_app(service.layout.run_dir, service.settings))


class SlowEncoder:
    """An encoder that takes ``seconds`` per batch of texts it has not seen (its cache hits are
    instant), like a text encoder with its embedding cache."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.seen: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if any(t not in self.seen for t in texts):
            time.sleep(self.seconds)  # holds the thread, as the model's forward pass does
            rng = np.random.default_rng(len(self.seen))
            self.seen.update({t: rng.normal(size=384).astype(np.float32) for t in texts})
        return np.stack([self.seen[t] for t in texts]) if texts else np.zeros((0, 384))


def test_posting_items_encodes_off_the_event_loop(app: FastAPI) -> None:
    state = app.state.service.state
    slow = SlowEncoder(seconds=1.5)
    state._encoder = slow
    state.search._encoder = slow

    async def scenario() -> tuple[float, float, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            item = {"item_id": "SLOW-1", "title": "A lamp that takes its time"}
            started = time.perf_counter()
            post = asyncio.create_task(c.post("/items", json={"items": [item]}, headers=WRITE))
            await asyncio.sleep(0.3)  # the encoder is busy now
            assert (await c.get("/health")).status_code == 200
            read_done = time.perf_counter() - started
            response = await post
            return read_done, time.perf_counter() - started, response.status_code

    read_done, post_done, status = asyncio.run(scenario())
    assert status == 201 and post_done >= 1.5
    assert read_done < 1.0  # answered while the item was being encoded
    assert "SLOW-1" in state.item_index
