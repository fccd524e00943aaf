"""Fixtures of the workflow tests: a small demo shop, ingested once per test session."""

import pytest

from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop
from shopaug.data.ingest import IngestSpec, ingest


@pytest.fixture(scope="session")
def shop_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    shop = generate_demo_shop(DemoShopConfig(n_items=300, n_users=250, seed=3))
    paths = write_demo_shop(shop, root / "source")
    ingest(IngestSpec(**paths), root / "run")
    return root / "run"
