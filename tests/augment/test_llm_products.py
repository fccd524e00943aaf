"""The LLM text products behind one interface: built by name from the one registry, run with one
signature, each writing its own table and reporting its cost as the generator's Usage record."""

from __future__ import annotations

import pandas as pd
import pytest

from shopaug.augment import (
    STRATEGIES,
    TEXT_PRODUCTS,
    TextProduct,
    TextSource,
    make_text_product,
)
from shopaug.data.sequences import Sequences
from shopaug.llm import FakeGenerator

CATALOG = pd.DataFrame(
    {
        "title": ["Glass Beaker", "Nitrile Gloves", "Caliper"],
        "brand": ["Pyrex", "Medline", "Mitutoyo"],
        "categories": ["Lab > Beakers", "Safety > Gloves", "Measurement"],
        "description": ["", "Powder free gloves.", None],
    }
)
SOURCE = TextSource(CATALOG, Sequences.from_lists(["a", "b"], [[0, 1], [2]]))
FILES = {
    "llm-queries": "queries.parquet",
    "llm-profiles": "profiles.parquet",
    "llm-describe": "descriptions.parquet",
    "llm-expand": "expansions.parquet",
}
COST_KEYS = {"requests", "calls", "cache_hits", "failures", "seconds", "tokens_per_s"}


def test_the_registry_holds_the_products_apart_from_the_strategies() -> None:
    assert {name: cls.file for name, cls in TEXT_PRODUCTS.items()} == FILES
    assert all(issubclass(cls, TextProduct) for cls in TEXT_PRODUCTS.values())
    assert not set(TEXT_PRODUCTS) & set(STRATEGIES)
    with pytest.raises(ValueError, match="unknown text product 'llm-poems'; known text products"):
        make_text_product("llm-poems")


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_product_runs_and_writes_the_same_way(name, tmp_path) -> None:
    llm = FakeGenerator(cache_dir=tmp_path / "cache")
    product = make_text_product(name, generator="fake", limit=2).bind(llm)
    run = product.generate(SOURCE)
    path = run.write(tmp_path / "out")
    assert path == tmp_path / "out" / FILES[name]
    pd.testing.assert_frame_equal(pd.read_parquet(path), run.table)
    report = run.report()
    assert set(report) >= COST_KEYS and report["requests"] == run.cost.requests > 0
    assert report["calls"] == llm.usage.calls  # the product's cost is its generator's usage
    assert not list((tmp_path / "out").glob("*.tmp"))
