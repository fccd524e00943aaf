"""``shopaug search`` shows highlighted hits; ``shopaug bench search`` writes comparable results."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from shopaug.cli import app
from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop
from shopaug.data.ingest import IngestSpec, ingest

runner = CliRunner()


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    shop = generate_demo_shop(DemoShopConfig(n_items=120, n_users=150, seed=3, query_share=0.6))
    ingest(IngestSpec(**write_demo_shop(shop, root / "source")), root / "run")
    return root / "run", shop


def test_search_prints_the_best_item_with_filters(shop_run) -> None:
    run, shop = shop_run
    item = shop.items.iloc[0]
    result = runner.invoke(
        app,
        ["search", str(run), item["title"], "--mode", "bm25", "-k", "3", "--brand", item["brand"]],
    )
    assert result.exit_code == 0, result.output
    assert item["item_id"] in result.output
    bad = runner.invoke(app, ["search", str(run), "x", "--mode", "magic"])
    assert bad.exit_code == 2 and "--mode" in bad.output
    inverted = runner.invoke(app, ["search", str(run), "x", "--min-price", "9", "--max-price", "1"])
    assert inverted.exit_code == 2 and "above max_price" in inverted.output


def test_bench_search_zero_shot_compares_with_bm25(shop_run, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path / "cache"))
    run, _ = shop_run
    out = tmp_path / "results.json"
    args = ["bench", "search", "--data", str(run), "--out", str(out), "--regime", "zero-shot"]
    result = runner.invoke(app, [*args, "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    outcome = json.loads(out.read_text())
    assert set(outcome["results"]) == {"bm25", "dense:zero-shot", "hybrid:zero-shot", "shipped"}
    assert outcome["shipped"]["system"] in ("dense:zero-shot", "hybrid:zero-shot")
    assert (
        outcome["results"]["bm25"]["metrics"]["all"]["ndcg@10"]["n"]
        == outcome["data"]["test_queries"]
    )
    pairs = {(c["a"], c["b"]) for c in outcome["comparisons"]}
    assert ("hybrid:zero-shot", "bm25") in pairs
    assert "paired differences" in result.output


def assert_shipped_is_the_validation_best(outcome: dict, output: str) -> None:
    """The shipped system is the best of the four on validation cases, never on test."""
    systems = {f"{m}:{r}" for m in ("dense", "hybrid") for r in ("zero-shot", "synthetic")}
    assert set(outcome["results"]) == {"bm25", "shipped", *systems}
    shipped = outcome["shipped"]
    assert set(shipped["validation_ndcg@10"]) == systems
    best = max(shipped["validation_ndcg@10"], key=shipped["validation_ndcg@10"].get)
    assert shipped["system"] == best and f"shipped: {best}" in output
    assert outcome["results"]["shipped"] == outcome["results"][best]


def test_bench_search_holdout_tests_on_held_out_items_queries(shop_run, tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path / "cache"))
    run, shop = shop_run
    made = tmp_path / "queries.parquet"  # as `shopaug augment -s llm-queries` writes it
    titles = shop.items["title"].str.lower().str.split().str[:3].str.join(" ")
    pd.DataFrame(
        {"query": titles, "item": range(len(titles)), "kept": True, "origin": "llm-query"}
    ).to_parquet(made)
    out = tmp_path / "holdout.json"
    args = ["bench", "search", "--data", str(run), "--out", str(out), "--holdout-items", "0.3"]
    args += ["--synthetic-file", str(made), "--max-steps", "2", "--batch-size", "4"]
    result = runner.invoke(app, [*args, "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    outcome = json.loads(out.read_text())
    assert_shipped_is_the_validation_best(outcome, result.output)
    holdout = outcome["data"]["holdout"]
    assert 0 < outcome["data"]["test_queries"] <= holdout["test_items"] == holdout["test_cases"]
    assert outcome["data"]["synthetic_pairs"] == holdout["train_pairs"] < len(titles)
    assert set(outcome["results"]["bm25"]["metrics"]) == {"all", "round-trip-kept"}
    refused = runner.invoke(app, [*args, "--regime", "real+synthetic"])
    assert refused.exit_code == 2 and "drop regime real+synthetic" in refused.output
    unknown = runner.invoke(app, [*args, "--blank-field", "price"])
    assert unknown.exit_code == 2 and "blank_fields" in unknown.output


def test_bench_search_on_a_query_file_runs_without_a_regime(shop_run, tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path / "cache"))
    run, shop = shop_run
    judgments = tmp_path / "judgments.csv"
    titles = shop.items["title"].str.lower().str.split().str[:3].str.join(" ")
    pd.DataFrame({"query": titles, "item_id": shop.items["item_id"]}).head(30).to_csv(
        judgments, index=False
    )
    out = tmp_path / "judged.json"
    args = ["bench", "search", "--data", str(run), "--out", str(out), "--queries", str(judgments)]
    fast = ["--max-steps", "1", "--batch-size", "4", "--work-dir", str(tmp_path / "w")]
    shipped_index = tmp_path / "shipped"
    result = runner.invoke(
        app, [*args, *fast, "--blank-field", "categories", "--ship-index", str(shipped_index)]
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(out.read_text())
    assert outcome["config"]["regimes"] == ["zero-shot", "synthetic"]
    assert outcome["config"]["blank_fields"] == ["categories"]
    assert_shipped_is_the_validation_best(outcome, result.output)
    assert outcome["data"]["slices"].startswith("query log")  # traffic, not judgments per query
    training = outcome["regimes"]["synthetic"]["training"]
    assert training["steps_run"] == 1 == training["best_step"]  # one step: one checkpoint
    assert training["checkpoints"][0]["validation"] == pytest.approx(
        outcome["shipped"]["validation_ndcg@10"]["dense:synthetic"]
    )
    assert "weights of step 1 kept" in result.output
    mode, regime = outcome["shipped"]["system"].split(":")
    served = json.loads((shipped_index / "search.json").read_text())["config"]
    assert served["mode"] == mode and (shipped_index / "encoder").is_dir() == (
        regime != "zero-shot"
    )
    hits = runner.invoke(app, ["search", str(shipped_index), titles.iloc[0], "-k", "3"])
    assert hits.exit_code == 0 and shop.items["item_id"].iloc[0] in hits.output, hits.output
    assert "slices by traffic from: query log" in result.output
    refused = runner.invoke(app, [*args, "--regime", "real+synthetic"])
    assert refused.exit_code == 2 and "drop regime real+synthetic" in refused.output
    unknown = runner.invoke(app, [*args, "--blank-field", "price"])
    assert unknown.exit_code == 2 and "blank_fields" in unknown.output


def test_bench_search_scores_expanded_twins_of_bm25_and_hybrid(shop_run, tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path / "cache"))
    run, shop = shop_run
    expansion = tmp_path / "expansion.csv"
    named = shop.items.head(40)
    queries = named["title"].str.lower().str.split().str[-2:].str.join(" ") + " gift"
    pd.DataFrame({"query": queries, "item_id": named["item_id"]}).to_csv(expansion, index=False)
    out = tmp_path / "expanded.json"
    args = ["bench", "search", "--data", str(run), "--out", str(out), "--regime", "zero-shot"]
    work = ["--work-dir", str(tmp_path / "work")]
    result = runner.invoke(app, [*args, *work, "--expansion-file", str(expansion)])
    assert result.exit_code == 0, result.output
    outcome = json.loads(out.read_text())
    assert {"bm25:expanded", "hybrid:zero-shot:expanded"} <= set(outcome["results"])
    assert outcome["data"]["items_expanded"] == 40
    overall = [c for c in outcome["comparisons"] if (c["metric"], c["slice"]) == ("ndcg@10", "all")]
    pairs = [(c["a"], c["b"]) for c in overall]
    assert len(pairs) == len(set(pairs))  # each pair once, though it is two kinds of comparison
    assert ("bm25:expanded", "bm25") in pairs
    assert ("hybrid:zero-shot:expanded", "hybrid:zero-shot") in pairs
    missing = runner.invoke(app, [*args, "--expansion-file", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "--expansion-file" in missing.output
    assert "none.csv: no such file" in missing.output
