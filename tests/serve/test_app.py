"""The HTTP service end to end: the app in process (FastAPI's ``TestClient``, lifespan and reload
thread included) for the API's behaviour, and uvicorn in a subprocess on a free loopback port
where a real process is the point (SIGKILL, a retrain swapped in under load)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shopaug.serve.bundle import RunLayout
from shopaug.serve.feedback import FeedbackLog, LogRecord
from shopaug.serve.retrain import retrain
from shopaug.serve.schemas import ServeSettings

from .conftest import API_KEY, copy_service

WRITE = {"X-API-Key": API_KEY}  # the key the service fixtures start with


@pytest.fixture(scope="module")
def client(
    markov_service_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One app per module, in process, over its own copy of the service folder (the tests do not
    depend on each other's writes). ``create_app`` limits torch to one thread, as a worker
    should; this process gets its own setting back afterwards."""
    import torch

    from shopaug.serve.app import create_app

    run_dir = copy_service(markov_service_dir, tmp_path_factory.mktemp("app") / "svc")
    settings = ServeSettings(
        api_key=API_KEY, reload_seconds=0.2, max_k=50, max_events=100, warm_search=False
    )
    threads = torch.get_num_threads()
    try:
        with TestClient(create_app(run_dir, settings), raise_server_exceptions=False) as c:
            yield c
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bundle_frames(markov_service_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    version = RunLayout(markov_service_dir).version_dir(1)
    return pd.read_parquet(version / "items.parquet"), pd.read_parquet(version / "events.parquet")


def test_health_and_openapi_list_every_endpoint(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "markov" and health["items"] == 60
    paths = client.get("/openapi.json").json()["paths"]
    for path in [
        "/recommend/{user_id}",
        "/recommend",
        "/similar/{item_id}",
        "/search",
        "/events",
        "/items",
        "/health",
        "/admin/reload",
    ]:
        assert path in paths
    assert client.get("/docs").status_code == 200


def test_known_user_is_ranked_by_the_model_without_seen_items(
    client: httpx.Client, bundle_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, events = bundle_frames
    user = events["user_id"].value_counts().index[0]
    seen = set(events.loc[events["user_id"] == user, "item_id"])
    body = client.get(f"/recommend/{user}", params={"k": 5}).json()
    assert body["source"] == "model" and len(body["items"]) == 5
    assert not seen & {i["item_id"] for i in body["items"]}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # Top 50 of the 60 items must hold some of the user's >10 seen ones once they are allowed.
    assert len(seen) > 10
    with_seen = client.get(f"/recommend/{user}", params={"k": 50, "exclude_seen": False}).json()
    assert seen & {i["item_id"] for i in with_seen["items"]}


def test_unknown_user_gets_popular_items_of_the_category(
    client: httpx.Client, bundle_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    items, events = bundle_frames
    leaf = items["categories"].str.split(" > ").str[-1].value_counts().index[0]
    in_leaf = set(items.loc[items["categories"].str.endswith(leaf), "item_id"])
    body = client.get("/recommend/nobody-ever", params={"k": 50, "category": leaf}).json()
    assert body["source"] == "popular"
    got = [i["item_id"] for i in body["items"]]
    assert got and set(got) <= in_leaf
    counts = events["item_id"].value_counts()
    assert [counts.get(i, 0) for i in got] == sorted((counts.get(i, 0) for i in got), reverse=True)
    department = items["categories"].str.split(" > ").str[0].iloc[0]
    upper = client.get("/recommend/nobody-ever", params={"k": 50, "category": department}).json()
    assert all(i["categories"].startswith(department) for i in upper["items"])


def test_empty_category_slice_is_an_empty_list(client: httpx.Client) -> None:
    response = client.get("/recommend/nobody", params={"category": "No Such Category"})
    assert response.status_code == 200 and response.json()["items"] == []
    session = client.post("/recommend", json={"items": [], "category": "No Such Category"})
    assert session.status_code == 200 and session.json()["items"] == []


def test_session_recommendations_report_unknown_items(
    client: httpx.Client, bundle_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    items, _ = bundle_frames
    first = items["item_id"].iloc[0]
    body = client.post("/recommend", json={"items": [first, "no-such-item"], "k": 3}).json()
    assert body["source"] == "model" and body["ignored_items"] == ["no-such-item"]
    assert first not in {i["item_id"] for i in body["items"]}
    only_unknown = client.post("/recommend", json={"items": ["nope"]}).json()
    assert only_unknown["source"] == "popular"


def test_similar_items_and_404_for_an_unknown_item(
    client: httpx.Client, bundle_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    items, _ = bundle_frames
    item = items["item_id"].iloc[0]
    body = client.get(f"/similar/{item}", params={"k": 4}).json()
    assert len(body["items"]) == 4 and item not in {i["item_id"] for i in body["items"]}
    missing = client.get("/similar/not-an-item")
    assert missing.status_code == 404 and "not-an-item" in missing.json()["detail"]


def test_search_obeys_category_and_price_filters(
    client: httpx.Client, bundle_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    items, _ = bundle_frames
    word = items["title"].iloc[0].split()[1]
    body = client.get("/search", params={"q": word, "k": 5}).json()
    assert body["items"] and any(word.lower() in i["title"].lower() for i in body["items"])
    department = items["categories"].str.split(" > ").str[0].iloc[0]
    params = {"q": word, "k": 20, "category": department, "min_price": 5, "max_price": 30}
    for hit in client.get("/search", params=params).json()["items"]:
        assert hit["categories"].startswith(department) and 5 <= hit["price"] <= 30
    bad = client.get("/search", params={"q": word, "min_price": 30, "max_price": 5})
    assert bad.status_code == 422 and "min_price" in bad.text


def test_write_endpoints_need_the_api_key(client: httpx.Client) -> None:
    events = {"events": [{"user_id": "u", "item_id": "x"}]}
    assert client.post("/events", json=events).status_code == 401
    assert client.post("/events", json=events, headers={"X-API-Key": "wrong"}).status_code == 401
    items = {"items": [{"item_id": "x", "title": "t"}]}
    assert client.post("/items", json=items).status_code == 401
    assert client.post("/admin/reload").status_code == 401


def test_bad_input_gets_a_clear_4xx_and_never_a_stack_trace(
    client: httpx.Client, bundle_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    items, _ = bundle_frames
    item = items["item_id"].iloc[0]
    json_headers = {**WRITE, "content-type": "application/json"}
    cases = {
        "malformed": client.post("/events", content=b'{"events": [', headers=json_headers),
        "unknown field": client.post(
            "/events",
            json={"events": [{"user_id": "u", "item_id": item, "colour": 1}]},
            headers=WRITE,
        ),
        "huge k": client.get("/recommend/u", params={"k": 10**9}),
        "k zero": client.get(f"/similar/{item}", params={"k": 0}),
        "k text": client.get("/recommend/u", params={"k": "ten"}),
        "session k": client.post("/recommend", json={"items": [], "k": 51}),
        "big batch": client.post(
            "/events", json={"events": [{"user_id": "u", "item_id": item}] * 101}, headers=WRITE
        ),
        "unknown item": client.post(
            "/events", json={"events": [{"user_id": "u", "item_id": "ghost"}]}, headers=WRITE
        ),
        "empty batch": client.post("/events", json={"events": []}, headers=WRITE),
        "negative price": client.post(
            "/items", json={"items": [{"item_id": "n", "title": "t", "price": -1}]}, headers=WRITE
        ),
    }
    expected_field = {
        "malformed": "body",
        "unknown field": "body.events.0.colour",
        "huge k": "query.k",
        "k zero": "query.k",
        "k text": "query.k",
        "session k": "body.k",
        "big batch": "body.events",
        "unknown item": "body.events.0.item_id",
        "empty batch": "body.events",
        "negative price": "body.items.0.price",
    }
    for name, response in cases.items():
        assert response.status_code == 422, name
        fields = [".".join(str(p) for p in e["loc"]) for e in response.json()["detail"]]
        assert any(f.startswith(expected_field[name]) for f in fields), (name, fields)
        assert "Traceback" not in response.text
    assert "ghost" in cases["unknown item"].text
    assert "Expecting" in cases["malformed"].text or "EOF" in cases["malformed"].text
    assert client.get("/no/such/path").status_code == 404


def test_unicode_ids_and_texts_round_trip(client: httpx.Client) -> None:
    item = {
        "item_id": "ÿ-商品-🧪",
        "title": "Bécher en verre borosilicaté 250 ml — 实验室",
        "categories": "Laboratoire > Verrerie",
        "price": 4.5,
    }
    assert client.post("/items", json={"items": [item]}, headers=WRITE).status_code == 201
    user = "usér-😀"
    event = {"user_id": user, "item_id": item["item_id"], "event": "purchase"}
    assert client.post("/events", json={"events": [event]}, headers=WRITE).status_code == 201
    similar = client.get(f"/similar/{item['item_id']}", params={"k": 2})
    assert similar.status_code == 200 and similar.json()["item_id"] == item["item_id"]
    hits = client.get("/search", params={"q": "bécher borosilicaté", "k": 3}).json()["items"]
    assert hits[0]["item_id"] == item["item_id"] and hits[0]["title"] == item["title"]
    body = client.get(f"/recommend/{user}", params={"k": 3}).json()
    assert body["user_id"] == user and item["item_id"] not in {i["item_id"] for i in body["items"]}


def test_accepted_events_change_the_users_next_recommendations(client: httpx.Client) -> None:
    before = client.get("/recommend/fresh-user", params={"k": 5}).json()
    assert before["source"] == "popular"
    first = before["items"][0]["item_id"]
    event = {"user_id": "fresh-user", "item_id": first, "event": "view"}
    accepted = client.post("/events", json={"events": [event]}, headers=WRITE)
    assert accepted.status_code == 201 and accepted.json()["accepted"] == 1
    after = client.get("/recommend/fresh-user", params={"k": 5}).json()
    assert after["source"] == "model"
    assert first not in {i["item_id"] for i in after["items"]}
    assert after["items"] != before["items"]


def test_new_item_is_indexed_at_once_and_can_change(client: httpx.Client) -> None:
    item = {
        "item_id": "NEW-TELESCOPE",
        "title": "Refractor telescope 70 mm with tripod",
        "description": "A beginner's telescope for stargazing.",
        "categories": "Optics > Telescopes",
        "price": 120.0,
    }
    response = client.post("/items", json={"items": [item]}, headers=WRITE)
    assert response.status_code == 201 and response.json()["new"] == ["NEW-TELESCOPE"]
    assert client.get("/similar/NEW-TELESCOPE", params={"k": 3}).status_code == 200
    hits = client.get("/search", params={"q": "telescope tripod", "k": 3}).json()["items"]
    assert hits[0]["item_id"] == "NEW-TELESCOPE"
    in_category = client.get("/recommend/anyone", params={"category": "Telescopes"}).json()
    assert [i["item_id"] for i in in_category["items"]] == ["NEW-TELESCOPE"]
    changed = {**item, "title": "Refractor telescope 90 mm", "categories": "Optics > Refractors"}
    response = client.post("/items", json={"items": [changed]}, headers=WRITE)
    assert response.json()["updated"] == ["NEW-TELESCOPE"]
    assert client.get("/recommend/anyone", params={"category": "Telescopes"}).json()["items"] == []
    hits = client.get("/search", params={"q": "refractor 90", "k": 1}).json()["items"]
    assert hits[0]["title"] == "Refractor telescope 90 mm"


def test_metrics_are_prometheus_text(client: httpx.Client) -> None:
    client.get("/recommend/someone")
    text = client.get("/metrics").text
    assert 'shopaug_request_seconds_count{endpoint="/recommend/{user_id}",method="GET"' in text
    assert "shopaug_model_version 1.0" in text


def test_sigkill_while_posting_loses_no_acknowledged_event(
    live: Any, bundle_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    items, _ = bundle_frames
    item_ids = items["item_id"].tolist()
    acknowledged: list[str] = []
    enough = threading.Event()

    def post_until_dead() -> None:
        with live.client() as c:
            for batch in range(10_000):
                events = [
                    {"user_id": f"crash-{batch}-{i}", "item_id": item_ids[(batch + i) % 60]}
                    for i in range(5)
                ]
                try:
                    response = c.post("/events", json={"events": events}, headers=WRITE)
                except httpx.TransportError:
                    return
                if response.status_code == 201:
                    acknowledged.extend(e["user_id"] for e in events)
                if batch == 20:
                    enough.set()

    poster = threading.Thread(target=post_until_dead)
    poster.start()
    assert enough.wait(60)
    live.kill()
    poster.join(30)
    assert not poster.is_alive()

    live.start()  # the restarted service repairs the log and replays it
    records, _ = FeedbackLog(RunLayout(live.run_dir).log_path).read()
    logged = {r.data["user_id"] for r in records if r.kind == "event"}
    assert len(acknowledged) >= 100
    assert set(acknowledged) <= logged
    with live.client() as c:
        last = acknowledged[-1]
        assert c.get(f"/recommend/{last}").json()["source"] == "model"


def test_retrain_swaps_the_model_without_dropping_requests(live: Any) -> None:
    with live.client() as c:
        events = [{"user_id": "swap-user", "item_id": "I000001"}] * 3
        assert c.post("/events", json={"events": events}, headers=WRITE).status_code == 201
    statuses: list[int] = []
    versions: set[int] = set()
    stop = threading.Event()

    def hammer() -> None:
        with live.client() as c:
            while not stop.is_set():
                response = c.get("/recommend/swap-user", params={"k": 5})
                statuses.append(response.status_code)
                versions.add(response.json()["model_version"])

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        retrain(live.run_dir)
        with live.client() as c:
            reloaded = c.post("/admin/reload", headers=WRITE).json()
        assert reloaded["model_version"] == 2
    finally:
        stop.set()
        thread.join(30)
    assert statuses and set(statuses) == {200}
    with live.client() as c:
        health = c.get("/health").json()
        body = c.get("/recommend/swap-user").json()
    assert health["model_version"] == 2 and body["model_version"] == 2
    assert body["source"] == "model"  # the folded events made swap-user a known user


def test_warm_search_prepares_the_query_and_item_encoders(service_dir: Path) -> None:
    from shopaug.serve.app import Service
    from shopaug.serve.schemas import ServeSettings

    state = Service(service_dir, ServeSettings(warm_search=True)).state
    queries = state.search.query_encoder
    assert "warm up the query encoder" in queries._cache  # no first-search stall
    assert queries.runtime in ("onnx", "torch")
    assert state.search.encoder.misses + state.search.encoder.hits == 1


def test_an_item_update_without_a_price_is_accepted_and_served(
    client: httpx.Client, bundle_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    items, _ = bundle_frames
    item = items["item_id"].iloc[3]
    update = {"items": [{"item_id": item, "title": "renamed"}]}
    response = client.post("/items", json=update, headers=WRITE)
    assert response.status_code == 201 and response.json()["updated"] == [item]
    hits = client.get("/search", params={"q": "renamed", "k": 1}).json()["items"]
    assert (hits[0]["item_id"], hits[0]["title"], hits[0]["price"]) == (item, "renamed", None)
    # The log goes on being applied after it: an event posted next is served.
    event = {"user_id": "after-update", "item_id": item}
    assert client.post("/events", json={"events": [event]}, headers=WRITE).status_code == 201
    assert client.get("/recommend/after-update").json()["source"] == "model"
    assert client.get("/health").json()["quarantined"] == 0


def test_ids_in_paths_are_stripped_as_posted_ones_are(
    client: httpx.Client, bundle_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    items, _ = bundle_frames
    item = items["item_id"].iloc[5]
    event = {"user_id": "  u7  ", "item_id": f" {item} "}
    assert client.post("/events", json={"events": [event]}, headers=WRITE).status_code == 201
    assert client.get("/recommend/%20%20u7%20%20").json()["source"] == "model"
    assert client.get(f"/similar/%20{item}%20").json()["item_id"] == item


def test_health_reports_the_log_offset_of_now(client: TestClient) -> None:
    log = FeedbackLog(client.app.state.service.log.path)
    item = client.get("/recommend/someone", params={"k": 1}).json()["items"][0]["item_id"]
    log.append([LogRecord("event", {"user_id": "by-another-worker", "item_id": item})])
    assert client.get("/health").json()["log_offset"] == log.size()
