from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from shopaug.search.base import ItemTable, SearchFilters, normalise_items


def test_upsert_retires_the_old_slot_of_a_changed_item(catalog: pd.DataFrame) -> None:
    table = ItemTable()
    table.upsert(catalog)
    changed = catalog.iloc[[0]].assign(title="Tianofa Dog Collar v2")
    slots = table.upsert(changed)
    assert slots.tolist() == [len(catalog)]
    assert len(table) == len(catalog)
    assert not table.alive[0] and table.alive[len(catalog)]
    assert table.slot_of["A1"] == len(catalog)


def test_values_follow_upserts(catalog: pd.DataFrame) -> None:
    table = ItemTable()
    table.upsert(catalog)
    assert table.values(np.array([1, 0]), ["item_id", "brand"]) == {
        "item_id": ["A2", "A1"],
        "brand": ["Vomi", "Tianofa"],
    }
    table.upsert(catalog.iloc[[0]].assign(title="Tianofa Dog Collar v2"))
    assert table.values(np.array([len(catalog)]), ["title"]) == {"title": ["Tianofa Dog Collar v2"]}


def test_remove_unknown_id_changes_nothing(catalog: pd.DataFrame) -> None:
    table = ItemTable()
    table.upsert(catalog)
    with pytest.raises(KeyError, match="nope"):
        table.remove(["A1", "nope"])
    assert len(table) == len(catalog)
    table.remove(["A1"])
    assert "A1" not in table.slot_of and not table.alive[0]


def test_filters_match_category_level_prefix_brand_and_price(catalog: pd.DataFrame) -> None:
    table = ItemTable()
    table.upsert(catalog)

    def ids(**kwargs: object) -> list[str]:
        mask = table.allowed(SearchFilters(**kwargs))
        return table.frame["item_id"][mask].tolist()

    assert ids(category="cat collars") == ["A7"]
    assert ids(category="Pets > Cats") == ["A3", "A7"]
    assert ids(brand="VOMI") == ["A2", "A3"]
    assert ids(min_price=20, max_price=60) == ["A2", "A4", "A5"]
    assert "A8" not in ids(max_price=1000)  # no price: excluded by a price filter


def test_filters_reject_inverted_price_range() -> None:
    with pytest.raises(ValidationError, match="above max_price"):
        SearchFilters(min_price=10, max_price=5)


def test_restore_round_trips_slots_and_tombstones(catalog: pd.DataFrame) -> None:
    table = ItemTable()
    table.upsert(catalog)
    table.upsert(catalog.iloc[[1]])
    back = ItemTable.restore(table.frame, table.alive)
    assert back.slot_of == table.slot_of
    np.testing.assert_array_equal(back.alive, table.alive)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"title": ["x"]}), "no 'item_id' column"),
        (pd.DataFrame({"item_id": ["a", " "]}), "row 1: empty item_id"),
        (pd.DataFrame({"item_id": ["a", "a"]}), "row 1: item_id 'a' appears twice"),
        (pd.DataFrame({"item_id": ["a", "b"], "price": [1.0, "cheap"]}), "row 1: price 'cheap'"),
    ],
)
def test_bad_rows_are_named(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_items(frame)
