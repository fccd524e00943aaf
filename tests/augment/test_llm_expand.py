"""Item text expansion: phrases per item from the LLM, the two round-trip checks in the encoder's
space, the choice of items from training rows, and the table's use by later stages."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from shopaug.augment import TEXT_PRODUCTS, ExpansionFilter, LLMExpansions, TextSource
from shopaug.augment.llm_expand import expanded_texts, phrase_rows, read_expansions
from shopaug.data.errors import DataError
from shopaug.data.sequences import Sequences
from shopaug.llm import Completion, FakeGenerator, GenerationFailure

CATALOG = pd.DataFrame(
    {
        "title": ["Glass Beaker", "Nitrile Gloves", "Digital Caliper", "Erlenmeyer Flask"],
        "brand": ["Pyrex", "", "", ""],
        "categories": ["", "", "", ""],
        "description": ["", "", "", ""],
    }
)
TEXTS = ["Glass Beaker. Pyrex", "Nitrile Gloves", "Digital Caliper", "Erlenmeyer Flask"]
ANSWERS = {
    "Glass Beaker": {"synonyms": ["Beaker  Cup", "beaker"], "uses": ["gloves"], "keywords": []},
    "Nitrile Gloves": {"synonyms": ["gloves"], "uses": [], "keywords": ["nitrile"]},
    "Digital Caliper": {"synonyms": [], "uses": [], "keywords": []},
    "Erlenmeyer Flask": {"synonyms": ["flask"], "uses": [], "keywords": []},
}


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A toy encoder: hashed words, so texts sharing a word are close and others orthogonal."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().replace(".", " ").split():
            out[row, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def answer(messages, params) -> str:
    title = messages[-1].content.splitlines()[0].removeprefix("Title: ")
    return json.dumps(ANSWERS[title])


def expander(tmp_path, **params) -> LLMExpansions:
    llm = FakeGenerator(cache_dir=tmp_path, respond=answer)
    return LLMExpansions(**params).bind(llm)


def test_registered_as_a_text_product() -> None:
    assert TEXT_PRODUCTS["llm-expand"] is LLMExpansions
    assert LLMExpansions.file == "expansions.parquet"


def test_phrases_about_another_item_are_removed_with_the_reason(tmp_path) -> None:
    product = expander(tmp_path, filter=ExpansionFilter(k=1, min_overlap=0))
    table = product.generate(CATALOG, encode=bag_of_words).table
    beaker = table[table["item"] == 0].set_index("phrase")
    assert beaker.index.tolist() == ["beaker cup", "beaker", "gloves"]  # normalised, deduplicated
    assert beaker["kind"].tolist() == ["synonyms", "synonyms", "uses"]
    assert beaker["kept"].tolist() == [True, True, False]
    assert beaker.loc["gloves", "rank"] > 1
    assert "top 1" in beaker.loc["gloves", "reason"]
    assert set(table["origin"]) == {"llm-expand"}
    assert set(table["prompt"]) == {"expand_item@v1"}
    assert 2 not in set(table["item"])  # nothing written, nothing stored


def test_an_expansion_that_moves_the_item_is_dropped_whole() -> None:
    vectors = {
        "a": [1.0, 0.0, 0.0],
        "b": [0.9, 0.1, 0.0],
        "c": [0.0, 1.0, 0.0],
        "d": [0.0, 0.0, 1.0],
        "near a": [1.0, 0.0, 0.0],
        "a. near a": [1.0, 0.0, 0.0],  # stays where it was
        "towards d": [0.6, 0.0, 0.8],
        "a. towards d": [0.3, 0.0, 1.0],  # now next to d instead of b
    }

    def encode(texts: list[str]) -> np.ndarray:
        out = np.asarray([vectors[t] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    check = ExpansionFilter(k=4, neighbours=1, min_overlap=1.0)
    for phrase, kept in (("near a", True), ("towards d", False)):
        rows = pd.DataFrame({"item": [0], "phrase": [phrase], "kind": ["keywords"]})
        out = check.apply(rows, ["a", "b", "c", "d"], encode)
        assert out["kept"].tolist() == [kept]
        assert out["overlap"].tolist() == [1.0 if kept else 0.0]
        assert ("neighbours" in out["reason"].iloc[0]) is not kept


def test_no_phrases_gives_an_empty_checked_table() -> None:
    empty = pd.DataFrame({"item": pd.Series([], dtype="int64"), "phrase": [], "kind": []})
    out = ExpansionFilter().apply(empty, TEXTS, bag_of_words)
    assert out.empty and {"rank", "overlap", "kept", "reason"} <= set(out.columns)


def test_items_go_emptiest_first_and_cold_only_on_request(tmp_path) -> None:
    train = Sequences.from_lists(
        [0, 1], [[1, 1, 3], [1]]
    )  # item 1: 3 events, item 3: 1, items 0, 2: 0
    source = TextSource(CATALOG, train)
    assert LLMExpansions().chosen_items(source).tolist() == [0, 2, 3, 1]
    assert LLMExpansions(max_train_events=0).chosen_items(source).tolist() == [0, 2]
    assert LLMExpansions(max_train_events=1, limit=2).window(
        LLMExpansions(max_train_events=1).chosen_items(source)
    ).tolist() == [0, 2]
    with pytest.raises(ValueError, match="training rows"):
        LLMExpansions(max_train_events=0).chosen_items(TextSource(CATALOG))
    table = expander(tmp_path, max_train_events=0).generate(source, encode=bag_of_words).table
    assert set(table["item"]) == {0}  # item 2 has no phrases


def test_failed_calls_and_blank_phrases_write_nothing() -> None:
    ok = Completion(text="", parsed={"synonyms": [" ", "Tube"], "uses": ["tube"]})
    failed = GenerationFailure(kind="malformed", reason="no json")
    rows = phrase_rows(np.asarray([5, 6]), [ok, failed])
    assert rows.to_dict("records") == [{"item": 5, "phrase": "tube", "kind": "synonyms"}]


def test_kept_phrases_are_appended_to_item_texts(tmp_path) -> None:
    product = expander(tmp_path, filter=ExpansionFilter(k=1, min_overlap=0))
    path = product.generate(CATALOG, encode=bag_of_words).write(tmp_path / "out")
    kept = read_expansions(path, len(CATALOG))
    texts = expanded_texts(TEXTS, kept)
    assert texts[0] == "Glass Beaker. Pyrex. beaker cup. beaker"
    assert texts[1] == "Nitrile Gloves. gloves. nitrile"
    assert texts[2] == TEXTS[2]


def test_a_table_from_other_data_is_refused_with_file_and_row(tmp_path) -> None:
    path = tmp_path / "expansions.parquet"
    pd.DataFrame({"item": [0, 9], "phrase": ["x", "y"], "kept": [True, True]}).to_parquet(path)
    with pytest.raises(DataError, match=r"expansions.parquet row 1: item 9 .*\(4 items\)"):
        read_expansions(path, 4)
    pd.DataFrame({"item": [0]}).to_parquet(path)
    with pytest.raises(DataError, match=r"missing column\(s\) \['phrase', 'kept'\]"):
        read_expansions(path, 4)
    path.write_text("not parquet")
    with pytest.raises(DataError, match="cannot read"):
        read_expansions(path, 4)
