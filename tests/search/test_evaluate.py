from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopaug.data.errors import DataError
from shopaug.search import SearchConfig, SearchEngine
from shopaug.search.evaluate import (
    compare,
    query_buckets,
    read_query_file,
    score_system,
    split_log,
    summarise,
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
