from __future__ import annotations

import pandas as pd

from shopaug.search.base import FieldWeights, ItemTable
from shopaug.search.keyword import KeywordIndex, highlight, tokenize


def index_of(catalog: pd.DataFrame, weights: FieldWeights | None = None, limit: float = 0.1):
    table = ItemTable()
    table.upsert(catalog)
    index = KeywordIndex(weights or FieldWeights(), delta_limit=limit)
    index.build(table)
    return table, index


def best(table: ItemTable, index: KeywordIndex, query: str) -> str:
    scores = index.scores(table, query) * table.alive
    return table.frame["item_id"][int(scores.argmax())]


def test_field_weights_decide_between_fields(catalog: pd.DataFrame) -> None:
    catalog = catalog.assign(description="")
    catalog.loc[catalog["item_id"] == "A5", "description"] = (
        "Sands wood and also removes speaker dust"
    )
    brand_first = FieldWeights(title=1, brand=0, categories=0, description=5)
    title_first = FieldWeights(title=5, brand=0, categories=0, description=1)
    assert best(*index_of(catalog, brand_first), "speaker") == "A5"
    assert best(*index_of(catalog, title_first), "speaker") == "A6"


def test_added_items_are_found_through_the_delta_segment(catalog: pd.DataFrame) -> None:
    table, index = index_of(catalog, limit=10.0)  # never rebuild: exercise the delta
    rebuilds = index.rebuilds
    new = pd.DataFrame(
        {"item_id": ["N1"], "title": ["Zorbo Hamster Wheel"], "categories": ["Pets > Small"]}
    )
    index.added(table, table.upsert(new), retired=0)
    assert index.rebuilds == rebuilds and index.delta_size == 1
    assert best(table, index, "hamster wheel") == "N1"


def test_changed_item_is_found_by_its_new_text_only(catalog: pd.DataFrame) -> None:
    table, index = index_of(catalog, limit=10.0)
    changed = catalog.iloc[[4]].assign(title="Kael Detail Polisher", description="")
    index.added(table, table.upsert(changed), retired=1)
    scores = index.scores(table, "orbital sander") * table.alive
    assert scores.max() == 0  # the old title's slot is a tombstone
    assert best(table, index, "polisher") == "A5"


def test_many_changes_trigger_a_full_rebuild(catalog: pd.DataFrame) -> None:
    table, index = index_of(catalog, limit=0.1)
    before = index.rebuilds
    table.remove(["A1"])
    index.removed(table, retired=1)
    assert index.rebuilds == before + 1 and index.delta_size == 0
    assert best(table, index, "collar") == "A7"


def test_highlight_marks_matched_words_and_escapes_html() -> None:
    terms = set(tokenize(["dog collar"])[0])
    assert highlight("Dog <b>Collar</b> & leash", terms) == (
        "<em>Dog</em> &lt;b&gt;<em>Collar</em>&lt;/b&gt; &amp; leash"
    )
    assert highlight("cat tree", terms) is None
    # whole words only, any case, the same words the tokeniser keeps
    assert highlight("dogs DOG hotdog dog_bed dog-bed", terms) == (
        "dogs <em>DOG</em> hotdog dog_bed <em>dog</em>-bed"
    )
    assert highlight("Dog", set()) is None
    long = "word " * 100 + "dog " + "word " * 100
    snippet = highlight(long, terms, snippet=True)
    assert snippet.startswith("…") and snippet.endswith("…") and "<em>dog</em>" in snippet
