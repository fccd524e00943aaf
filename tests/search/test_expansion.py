"""Document expansion: kept synthetic queries reach an item's keyword document, and only there."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopaug.search import FieldWeights, SearchConfig, SearchEngine
from shopaug.search.expansion import DocumentExpansion


def pairs(rows: list[tuple[str, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["query", "item_id", "kept"])


def test_texts_keep_round_trip_survivors_once_each_up_to_the_cap() -> None:
    expansion = DocumentExpansion(max_queries=2)
    texts = expansion.texts(
        pairs(
            [
                ("Pet  Neckband", "A1", True),
                ("pet neckband", "A1", True),  # the same query again, other spacing and case
                ("puppy leash ring", "A1", True),
                ("third one", "A1", True),  # over the cap
                ("garden hose", "A1", False),  # removed by the round trip
                ("hoodie", "A7", False),
            ]
        )
    )
    assert texts.to_dict() == {"A1": "pet neckband. puppy leash ring"}


def test_apply_sets_the_field_of_named_items_and_leaves_the_rest(catalog) -> None:
    catalog = catalog.assign(expansion=["old words"] + [""] * (len(catalog) - 1))
    expanded = DocumentExpansion().apply(catalog, pairs([("pet neckband", "A1", True)]))
    assert expanded["expansion"].iloc[0] == "old words. pet neckband"
    assert (expanded["expansion"].iloc[1:] == "").all()
    assert DocumentExpansion.coverage(expanded) == {"items_expanded": 1, "share_expanded": 0.125}
    assert list(catalog.columns) == list(expanded.columns)  # the input frame is not changed


def test_keyword_search_finds_an_item_by_a_word_only_its_expansion_has(catalog) -> None:
    expanded = DocumentExpansion().apply(catalog, pairs([("pet neckband", "A1", True)]))
    config = SearchConfig(mode="bm25")
    plain = SearchEngine.build(catalog, config)
    assert plain.search("neckband", k=3) == []
    hits = SearchEngine.build(expanded, config).search("neckband", k=3)
    assert [h.item_id for h in hits] == ["A1"]
    assert hits[0].highlights == {}  # the shopper sees the shop's own text, not the expansion
    unweighted = SearchConfig(mode="bm25", field_weights=FieldWeights(expansion=0))
    assert SearchEngine.build(expanded, unweighted).search("neckband", k=3) == []


def test_the_encoder_never_reads_the_expansion(catalog, encoder) -> None:
    expanded = DocumentExpansion().apply(catalog, pairs([("pet neckband", "A1", True)]))
    plain = SearchEngine.build(catalog, SearchConfig(mode="dense"), encoder=encoder)
    grown = SearchEngine.build(expanded, SearchConfig(mode="dense"), encoder=encoder)
    np.testing.assert_array_equal(plain.dense.vectors, grown.dense.vectors)


def test_a_saved_expanded_index_loads_with_its_expansion_and_an_old_one_without(
    catalog, tmp_path
) -> None:
    expanded = DocumentExpansion().apply(catalog, pairs([("pet neckband", "A1", True)]))
    SearchEngine.build(expanded, SearchConfig(mode="bm25")).save(tmp_path / "new")
    loaded = SearchEngine.load(tmp_path / "new")
    assert [h.item_id for h in loaded.search("neckband", k=3)] == ["A1"]
    old = tmp_path / "old"  # saved before the field existed: no expansion column at all
    SearchEngine.build(catalog, SearchConfig(mode="bm25")).save(old)
    frame = pd.read_parquet(old / "items.parquet").drop(columns="expansion")
    frame.to_parquet(old / "items.parquet")
    table = SearchEngine.load(old).table.frame
    assert (table["expansion"] == "").all()
