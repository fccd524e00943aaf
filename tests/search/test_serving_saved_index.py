"""The HTTP service searches the index saved in its bundle: starting it encodes no catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from shopaug.data import IngestSpec, ingest
from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop
from shopaug.search import SearchEngine


@pytest.fixture
def service_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 50-item demo shop trained into a service run folder (its bundle holds search/)."""
    from shopaug.serve.bundle import TrainConfig, train_bundle

    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path / "cache"))
    shop = generate_demo_shop(DemoShopConfig(n_items=50, n_users=30, seed=5))
    files = write_demo_shop(shop, tmp_path / "source")
    ingest(IngestSpec(items=files["items"], interactions=files["interactions"]), tmp_path / "run")
    train_bundle(TrainConfig(data=tmp_path / "run", model="pop"), tmp_path / "service")
    return tmp_path / "service"


def test_the_service_loads_the_saved_index_and_builds_none(service_dir, monkeypatch) -> None:
    import torch

    from shopaug.serve.app import create_app
    from shopaug.serve.bundle import RunLayout
    from shopaug.serve.schemas import ServeSettings

    layout = RunLayout(service_dir)
    saved = SearchEngine.load(layout.version_dir(layout.current()) / "search")
    title = saved.table.frame["title"].iloc[0]

    def refuse(*args: object, **kwargs: object) -> SearchEngine:
        raise AssertionError("the service indexed the catalog instead of loading its index")

    monkeypatch.setattr(SearchEngine, "build", refuse)
    threads = torch.get_num_threads()
    try:
        app = create_app(service_dir, ServeSettings(warm_search=False))
        response = TestClient(app).get("/search", params={"q": title, "k": 3})
    finally:
        torch.set_num_threads(threads)  # create_app limits this process to one thread
    assert response.status_code == 200, response.text
    ids = [item["item_id"] for item in response.json()["items"]]
    assert ids and ids[0] == saved.search(title, k=1)[0].item_id
