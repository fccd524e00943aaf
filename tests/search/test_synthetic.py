from __future__ import annotations

import pandas as pd

from shopaug.search.synthetic import PAIR_COLUMNS, TemplateQueries


def test_template_queries_come_from_the_items_own_fields(catalog: pd.DataFrame) -> None:
    pairs = TemplateQueries(per_item=3, seed=1).generate(catalog)
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    assert set(pairs["item_id"]) == set(catalog["item_id"])
    assert pairs.groupby("item_id").size().max() <= 3
    assert not pairs.duplicated(["item_id", "query"]).any()
    text = catalog.set_index("item_id")
    for query, item in zip(pairs["query"], pairs["item_id"], strict=True):
        fields = " ".join(text.loc[item, ["title", "brand", "categories"]]).lower()
        assert all(word in fields for word in query.split()), (query, item)


def test_template_queries_are_reproducible_and_seeded(catalog: pd.DataFrame) -> None:
    a = TemplateQueries(seed=3).generate(catalog)
    assert a.equals(TemplateQueries(seed=3).generate(catalog))
    assert "dog collars" in set(a["query"]) | set(
        TemplateQueries(seed=4).generate(catalog)["query"]
    )
