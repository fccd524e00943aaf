from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from shopaug.data.errors import DataError
from shopaug.search import SearchConfig, SearchEngine
from shopaug.search.evaluate import (
    METRICS,
    SearchBenchConfig,
    compare,
    default_regimes,
    holdout_split,
    query_buckets,
    read_pairs_file,
    read_query_file,
    score_system,
    ship,
    split_log,
    summarise,
    traffic_slices,
    validation_cases,
    validation_items_split,
)


def log_frame(n: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "query": [f"q{int(i)}" for i in rng.integers(0, 30, n)],
            "item_id": "A1",
            "timestamp": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.permutation(n), "h"),
        }
    )


def test_split_by_time_puts_every_test_row_after_every_training_row() -> None:
    train, valid, test = split_log(log_frame(), test_share=0.3, valid_share=0.2)
    assert (len(train), len(valid), len(test)) == (50, 20, 30)
    assert train["timestamp"].max() < valid["timestamp"].min()
    assert valid["timestamp"].max() < test["timestamp"].min()


def test_split_without_time_never_shares_a_query_between_sides() -> None:
    train, valid, test = split_log(log_frame(400).drop(columns="timestamp"), 0.3, 0.2)
    sides = [set(part["query"]) for part in (train, valid, test)]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert sum(len(p) for p in (train, valid, test)) == 400


def test_buckets_split_traffic_in_thirds() -> None:
    log = pd.DataFrame({"query": ["a"] * 6 + ["b"] * 3 + ["c"] * 2 + ["d", "e", "f", "g"]})
    buckets = query_buckets(log)
    assert buckets["a"] == "head" and buckets["b"] == "torso" and buckets["g"] == "tail"


def test_scores_are_the_textbook_metrics(catalog: pd.DataFrame) -> None:
    engine = SearchEngine.build(catalog, SearchConfig(mode="bm25"))
    cases = pd.DataFrame(
        {
            "query": ["orbital sander", "tianofa", "tianofa", "zzz"],
            "item_id": ["A5", "A1", "A7", "A4"],
        }
    )
    scored = score_system(engine, cases, "bm25")
    assert scored["queries"] == ["orbital sander", "tianofa", "zzz"]
    values = scored["values"]
    np.testing.assert_allclose(values["ndcg@10"], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(values["recall@100"], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(values["mrr"], [1.0, 1.0, 0.0])
    summary = summarise(scored, {"tianofa": "head"}, n_resamples=100)
    assert summary["metrics"]["head"]["ndcg@10"]["n"] == 1
    assert summary["metrics"]["tail"]["ndcg@10"]["n"] == 2
    assert summary["latency_ms"]["median"] >= 0
    same = compare("a", "b", {"a": scored, "b": scored}, {}, n=100)
    assert all(c["mean_diff"] == 0 and c["p_value"] == 1 for c in same)


def test_query_files_are_checked(tmp_path: Path) -> None:
    good = tmp_path / "q.csv"
    pd.DataFrame({"query": ["dog"], "item_id": [12]}).to_csv(good, index=False)
    assert read_query_file(good)["item_id"].tolist() == ["12"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"query": ["dog", " "], "item_id": [1, 2]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match="row 1: empty query"):
        read_query_file(bad)
    with pytest.raises(DataError, match="missing column"):
        pd.DataFrame({"q": ["dog"]}).to_csv(bad, index=False)
        read_query_file(bad)
    with pytest.raises(DataError, match=r"\.csv, \.parquet or \.jsonl"):
        read_query_file(tmp_path / "q.txt")


def synthetic_pairs(n_items: int) -> pd.DataFrame:
    """Two queries per item; the round-trip filter kept the first and dropped the second."""
    ids = [f"I{i:04d}" for i in range(n_items)]
    return pd.DataFrame(
        {
            "query": [f"{kind} {i}" for i in ids for kind in ("found", "missed")],
            "item_id": np.repeat(ids, 2),
            "source": "llm",
            "kept": [True, False] * n_items,
        }
    )


def test_holdout_keeps_test_and_validation_items_out_of_training() -> None:
    pairs = synthetic_pairs(400)
    split = holdout_split(pairs, share=0.2, seed=0)
    train, valid, test = (set(part["item_id"]) for part in (split.train, split.valid, split.test))
    assert not (train & test) and not (train & valid) and not (valid & test)
    assert 60 <= len(test) <= 100 and 25 <= len(valid) <= 55  # 80 and 40 expected
    assert split.train["kept"].all()  # training takes the filter's survivors only
    assert len(split.train) == len(train)
    assert len(split.test) == 2 * len(test)  # test keeps the dropped queries too
    assert {split.buckets[q] for q in split.test["query"] if q.startswith("missed")} == {
        "round-trip-dropped"
    }
    assert {split.buckets[q] for q in split.test["query"] if q.startswith("found")} == {
        "round-trip-kept"
    }
    assert split.sizes()["test_queries_dropped_by_round_trip"] == len(test)


def test_holdout_is_stable_as_the_pairs_grow_and_moves_with_the_seed() -> None:
    small, grown = (
        holdout_split(synthetic_pairs(300), 0.2),
        holdout_split(synthetic_pairs(600), 0.2),
    )
    held = set(small.test["item_id"])
    assert held == set(grown.test["item_id"]) & {f"I{i:04d}" for i in range(300)}
    assert held != set(holdout_split(synthetic_pairs(300), 0.2, seed=1).test["item_id"])


def test_pairs_files_of_both_shapes_are_read(tmp_path: Path) -> None:
    ids = np.array(["A", "B", "C"], dtype=object)
    made = tmp_path / "queries.parquet"  # the shape `shopaug augment -s llm-queries` writes
    pd.DataFrame(
        {"query": ["Red Mug ", "mug"], "item": [2, 0], "kept": [True, False], "origin": "llm-query"}
    ).to_parquet(made)
    pairs = read_pairs_file(made, ids)
    assert pairs.to_dict("list") == {
        "query": ["red mug", "mug"],
        "item_id": ["C", "A"],
        "source": ["llm-query", "llm-query"],
        "kept": [True, False],
    }
    with pytest.raises(DataError, match="row 0: item 2 is not a row of this catalog"):
        read_pairs_file(made, ids[:2])
    plain = tmp_path / "mine.csv"
    pd.DataFrame({"query": ["mug"], "item_id": ["B"]}).to_csv(plain, index=False)
    assert read_pairs_file(plain, ids).to_dict("list") == {
        "query": ["mug"],
        "item_id": ["B"],
        "source": ["mine"],
        "kept": [True],
    }


def test_holdout_refuses_a_query_file_and_real_queries(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="drop queries"):
        SearchBenchConfig(data=tmp_path, queries=tmp_path / "q.csv", holdout_items=0.2)
    with pytest.raises(ValidationError, match="drop regime real"):
        SearchBenchConfig(data=tmp_path, holdout_items=0.2)
    assert SearchBenchConfig(data=tmp_path, holdout_items=0.2, regimes=["zero-shot"])


def test_a_query_file_gets_the_regimes_that_need_no_log(tmp_path: Path) -> None:
    queries = tmp_path / "q.csv"
    assert default_regimes(None) == ["zero-shot", "synthetic", "real+synthetic"]
    assert default_regimes(None, queries) == ["zero-shot", "synthetic"]
    assert default_regimes(0.2) == ["zero-shot", "synthetic"]
    config = SearchBenchConfig(
        data=tmp_path, queries=queries, regimes=default_regimes(None, queries)
    )
    assert config.regimes == ["zero-shot", "synthetic"]
    with pytest.raises(ValidationError, match="drop regime real"):
        SearchBenchConfig(data=tmp_path, queries=queries)


def judgments(frequency: list[int] | None = None) -> pd.DataFrame:
    """Relevance judgments: "many" has four relevant items, "popular" one."""
    frame = pd.DataFrame(
        {
            "query": ["many"] * 4 + ["Popular", "some", "rare"],
            "item_id": ["A1", "A2", "A3", "A4", "A5", "A6", "A7"],
        }
    )
    if frequency is not None:
        frame["frequency"] = frequency
    return frame


def test_slices_of_a_query_file_follow_its_frequency_not_its_rows(tmp_path: Path) -> None:
    config = SearchBenchConfig(data=tmp_path, queries=tmp_path / "q.csv", regimes=["zero-shot"])
    buckets, basis = traffic_slices(config, None, judgments([2, 2, 2, 2, 90, 30, 0]))
    # by rows, "many" (four relevant items) would be the head query
    assert buckets == {"Popular": "head", "some": "tail", "many": "tail", "rare": "tail"}
    assert "frequency column" in basis


def test_without_frequency_a_query_file_is_sliced_by_the_log(tmp_path: Path) -> None:
    config = SearchBenchConfig(data=tmp_path, queries=tmp_path / "q.csv", regimes=["zero-shot"])
    log = pd.DataFrame({"query": ["popular"] * 8 + ["some"] * 4 + ["many", "other"] * 2})
    buckets, basis = traffic_slices(config, log, judgments())  # "rare" is not in the log
    assert buckets == {"Popular": "head", "some": "tail", "many": "tail", "rare": "tail"}
    assert basis.startswith("query log")


def test_without_frequency_or_log_there_are_no_traffic_slices(tmp_path: Path, caplog) -> None:
    config = SearchBenchConfig(data=tmp_path, queries=tmp_path / "q.csv", regimes=["zero-shot"])
    with caplog.at_level("WARNING", logger="shopaug.search.evaluate"):
        buckets, basis = traffic_slices(config, None, judgments())
    assert buckets is None and "no frequency column" in basis and "no query log" in basis
    assert "no frequency column" in caplog.text
    queries = ["many", "rare"]
    scored = {"queries": queries, "values": {m: np.ones(2) for m in METRICS}, "seconds": np.ones(2)}
    assert set(summarise(scored, None, 100)["metrics"]) == {"all"}
    both = {"a": scored, "b": scored}
    assert {c["slice"] for c in compare("a", "b", both, None, 100)} == {"all"}


def test_query_file_frequency_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    judgments([2, 2, 2, 2, 90, 30, 0]).to_csv(path, index=False)
    assert read_query_file(path)["frequency"].tolist() == [2, 2, 2, 2, 90, 30, 0]
    judgments([2, 2, 3, 2, 90, 30, 0]).to_csv(path, index=False)
    with pytest.raises(DataError, match="'many' has different frequency values"):
        read_query_file(path)
    judgments([2, 2, 2, 2, 90, -1, 0]).to_csv(path, index=False)
    with pytest.raises(DataError, match="row 5: frequency '-1' is not a count"):
        read_query_file(path)


def test_validation_items_are_never_named_by_a_training_query() -> None:
    pairs = synthetic_pairs(200)
    shared = pd.DataFrame({"query": "acme", "item_id": pairs["item_id"].unique()})
    train, valid = validation_items_split(pd.concat([pairs, shared]), 0.1, seed=0)
    assert not set(train["query"]) & set(valid["query"])
    assert "acme" in set(valid["query"])  # a query a held-out item shares leaves training
    held_out = set(valid["item_id"]) - set(train["item_id"])
    assert 5 < len(held_out) < 50  # about a tenth of the 200 items


def test_queries_the_round_trip_removed_never_train() -> None:
    pairs = synthetic_pairs(200).assign(kept=True)
    pairs.loc[::3, "kept"] = False
    train, valid = validation_items_split(pairs, 0.1, seed=0)
    removed = set(pairs.loc[~pairs["kept"], "query"])
    assert not removed & set(train["query"]) and len(train) > 0
    assert removed & set(valid["query"])  # validation keeps every query of its items


def test_template_queries_validate_only_when_no_other_source_is_there() -> None:
    valid = pd.DataFrame(
        {
            "query": ["acme gloves", "gloves for lab work", "acme"],
            "item_id": ["a", "a", "b"],
            "source": ["template", "llm", "template"],
        }
    )
    chosen = validation_cases(valid, "not-template")
    assert chosen.to_dict("records") == [{"query": "gloves for lab work", "item_id": "a"}]
    assert len(validation_cases(valid, "all")) == 3
    only_template = valid[valid["source"] == "template"]
    assert len(validation_cases(only_template, "not-template")) == 2  # nothing else to use
    assert list(validation_cases(valid.drop(columns="source"), "not-template")) == [
        "query",
        "item_id",
    ]


def test_the_shipped_system_is_the_validation_best_and_says_what_lost() -> None:
    shipped = ship({"dense:zero-shot": 0.50, "dense:synthetic": 0.45, "hybrid:zero-shot": 0.52})
    assert shipped["system"] == "hybrid:zero-shot"
    assert "below zero-shot dense (0.5000) on validation: dense:synthetic" in shipped["reason"]
    assert ship({}) is None


def test_synthetic_files_mix_with_template_queries_when_asked(tmp_path: Path, catalog) -> None:
    from types import SimpleNamespace

    from shopaug.search.evaluate import _synthetic_pairs

    llm = tmp_path / "llm.csv"
    pd.DataFrame({"query": ["pet neckband"], "item_id": ["A1"]}).to_csv(llm, index=False)
    dataset = SimpleNamespace(items=catalog)
    alone = SearchBenchConfig(data=tmp_path, synthetic_files=[llm])
    assert _synthetic_pairs(alone, dataset)["query"].tolist() == ["pet neckband"]
    mixed = _synthetic_pairs(alone.model_copy(update={"mix_template": True}), dataset)
    assert set(mixed["source"]) == {"llm", "template"}
    assert set(mixed["item_id"]) == set(catalog["item_id"])


def test_a_test_query_written_into_its_items_expansion_is_counted(catalog, tmp_path) -> None:
    from shopaug.search.evaluate import count_test_rows_in_expansion
    from shopaug.search.expansion import DocumentExpansion

    pairs = pd.DataFrame({"query": ["pet neckband", "chew toy"], "item_id": ["A1", "A2"]})
    expanded = DocumentExpansion().apply(catalog, pairs)
    test = pd.DataFrame({"query": ["Pet Neckband", "chew toy", "dog bed"], "item_id": ["A1"] * 3})
    assert count_test_rows_in_expansion(test, expanded) == 1  # "chew toy" expands A2, not A1
    with pytest.raises(ValueError, match="drop expansion_files"):
        SearchBenchConfig(
            data=tmp_path, holdout_items=0.2, regimes=["zero-shot"], expansion_files=[tmp_path]
        )
