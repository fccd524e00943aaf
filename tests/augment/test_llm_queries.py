"""LLMQueries: queries and variants with provenance, the BM25 round-trip filter, the query table on
disk."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shopaug.augment import LLMQueries, QuerySamples, RoundTripFilter
from shopaug.augment.llm_queries import CatalogSearch, catalog_texts
from shopaug.llm import FakeGenerator

CATALOG = pd.DataFrame(
    {
        "title": [
            "Pyrex Glass Beaker 250 mL",
            "Nitrile Exam Gloves Large",
            "Digital Caliper Stainless Steel",
            "Erlenmeyer Flask 500 mL",
        ],
        "brand": ["Pyrex", "Medline", "Mitutoyo", "Kimble"],
        "categories": [
            "Lab > Beakers",
            "Safety > Gloves",
            "Measurement > Calipers",
            "Lab > Flasks",
        ],
        "description": ["", "Powder free gloves for the lab.", "", "Narrow neck conical flask."],
    }
)

#: The model's queries per item: one names the item, one names nothing in the catalog.
QUERIES = {
    "Pyrex Glass Beaker 250 mL": ["glass beaker", "something nice"],
    "Nitrile Exam Gloves Large": ["nitrile gloves large", "gift for dad"],
    "Digital Caliper Stainless Steel": ["digital caliper", "cool gadget"],
    "Erlenmeyer Flask 500 mL": ["erlenmeyer flask", "flask"],
}


def respond(messages, params) -> str:
    """Queries from QUERIES by the title in the prompt; variants built from the query."""
    last = messages[-1].content
    if last.startswith("Title: "):
        title = last.splitlines()[0].removeprefix("Title: ")
        return json.dumps({"queries": QUERIES[title]})
    query = last.removeprefix("Query: ")
    return json.dumps(
        {"paraphrase": f"best {query} online", "shorter": "zzz", "misspelt": query[:-1]}
    )


def fake(tmp_path) -> FakeGenerator:
    return FakeGenerator(cache_dir=tmp_path, respond=respond)


def test_round_trip_keeps_a_query_that_names_its_item_and_drops_one_that_does_not() -> None:
    search = CatalogSearch(catalog_texts(CATALOG))
    samples = QuerySamples.build(
        [
            {"query": q, "item": i, "origin": "llm-query", "kind": "query", "source_query": ""}
            | {"generator": "g", "prompt": "p"}
            for i, q in [(0, "glass beaker"), (1, "something nice"), (2, "lab beakers")]
        ]
    )
    checked = RoundTripFilter(k=1).apply(samples, search)
    assert checked.frame["kept"].tolist() == [True, False, False]
    assert checked.frame["rank"].tolist() == [1, 0, 0]
    assert checked.frame["score"].tolist() == [1.0, 0.0, 0.0]
    # "lab beakers" finds the beaker first, not item 2: kept only if it is about item 0.
    assert search.ranks(["lab beakers"], [0], k=1).tolist() == [1]


def test_queries_and_variants_with_provenance(tmp_path) -> None:
    run = LLMQueries(k=2).bind(fake(tmp_path)).generate(CATALOG)
    frame = run.samples.frame
    originals = frame[frame["kind"] == "query"]
    assert set(originals["origin"]) == {"llm-query"}
    assert set(originals["generator"]) == {"fake(fake-1) item_queries@v1"}
    assert set(originals["prompt"]) == {"item_queries@v1"}
    assert (originals["source_query"] == "").all()
    kept = originals[originals["kept"]]
    assert sorted(kept["query"]) == [
        "digital caliper",
        "erlenmeyer flask",
        "flask",
        "glass beaker",
        "nitrile gloves large",
    ]
    variants = frame[frame["kind"] != "query"]
    assert set(variants["origin"]) == {"llm-query-variant"}
    assert set(variants["prompt"]) == {"query_variants@v1"}
    # One kept query per item gets variants (variant_queries=1), made from that query.
    assert variants.groupby("item")["source_query"].nunique().tolist() == [1, 1, 1, 1]
    assert set(variants["source_query"]) <= set(kept["query"])
    assert set(variants["kind"]) == {"paraphrase", "shorter", "misspelt"}
    assert not variants[variants["kind"] == "shorter"]["kept"].any()  # "zzz" finds nothing
    assert variants[variants["kind"] == "paraphrase"]["kept"].all()
    report = run.report()
    assert report["queries"] == len(frame) and report["kept"] == int(frame["kept"].sum())
    assert report["by_kind"]["query"] == {"kept": 5, "removed": 3}
    assert report["requests"] == 4 + 4 and report["failures"] == 0


def test_limit_chooses_what_is_asked(tmp_path) -> None:
    llm = fake(tmp_path)
    run = LLMQueries(limit=1, variants=False).bind(llm).generate(CATALOG)
    assert set(run.samples.frame["item"]) == {0} and llm.calls == 1


def test_offset_and_limit_split_a_run_into_windows(tmp_path) -> None:
    llm = fake(tmp_path)
    windows = [
        LLMQueries(offset=offset, limit=2, variants=False).bind(llm).generate(CATALOG)
        for offset in (0, 2)
    ]
    asked = [set(run.samples.frame["item"]) for run in windows]
    assert asked == [{0, 1}, {2, 3}]
    tail = LLMQueries(offset=3, variants=False).bind(llm).generate(CATALOG)
    assert tail.cost.requests == 1 and tail.cost.cache_hits == 1


def test_repeated_queries_are_dropped(tmp_path) -> None:
    def same_twice(messages, params) -> str:
        return json.dumps({"queries": ["Glass  Beaker", "glass beaker"]})

    generator = FakeGenerator(cache_dir=tmp_path, respond=same_twice)
    run = LLMQueries(limit=1, variants=False).bind(generator).generate(CATALOG)
    assert run.samples.frame["query"].tolist() == ["glass beaker"]
    assert run.duplicates == 1


def test_failed_calls_are_counted_and_leave_no_query(tmp_path) -> None:
    broken = FakeGenerator(cache_dir=tmp_path, respond=lambda m, p: "no json here")
    run = LLMQueries(variants=False).bind(broken).generate(CATALOG)
    assert len(run.samples) == 0
    assert run.cost.failures == 4 and run.report()["kept_fraction"] == 0.0


def test_query_table_round_trips_through_parquet(tmp_path) -> None:
    run = LLMQueries(k=2).bind(fake(tmp_path / "cache")).generate(CATALOG)
    path = run.samples.write(tmp_path / "out" / "queries.parquet")
    back = QuerySamples.read(path)
    pd.testing.assert_frame_equal(back.frame, run.samples.frame)
    assert len(back.kept()) == int(run.samples.frame["kept"].sum())
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_a_table_without_the_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        QuerySamples(pd.DataFrame({"query": ["x"]}))


def test_catalog_text_joins_title_brand_categories_and_description() -> None:
    assert catalog_texts(CATALOG)[1] == (
        "Nitrile Exam Gloves Large Medline Safety > Gloves Powder free gloves for the lab."
    )
    assert np.array_equal(
        CatalogSearch(catalog_texts(CATALOG)).ranks(["medline", "zzz"], [1, 1], k=4), [1, 0]
    )
