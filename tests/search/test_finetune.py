from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopaug.encode import TextEncoder
from shopaug.search import SearchConfig, SearchEngine
from shopaug.search.finetune import (
    FineTuneConfig,
    batches_without_repeats,
    fine_tune,
    known_positive_mask,
    multi_positive_loss,
    training_plan,
    training_record,
    training_triples,
    without_generic_queries,
)


def test_batches_never_repeat_an_item() -> None:
    items = ["a", "a", "a", "b", "c", "d", "b"]
    batches = batches_without_repeats(items, batch_size=3, seed=0)
    for batch in batches:
        assert len({items[i] for i in batch}) == len(batch)
    assert min(len(b) for b in batches) >= 2  # in-batch negatives need two items
    placed = {i for b in batches for i in b}
    left = [items[i] for i in range(len(items)) if i not in placed]
    assert len(set(left)) <= 1  # only copies of one item can be left without a partner


def test_batches_never_repeat_a_query_either() -> None:
    items = ["a", "b", "c", "d", "e", "f"]
    queries = ["stanley", "stanley", "stanley", "gloves", "tape", "gloves"]
    batches = batches_without_repeats(items, batch_size=4, seed=0, queries=queries)
    for batch in batches:
        assert len({queries[i] for i in batch}) == len(batch)
    placed = {i for b in batches for i in b}
    # Three rows of one query need three batches; a last one alone has no in-batch negative.
    assert len(placed) >= 5 and {queries[i] for i in set(range(6)) - placed} <= {"stanley"}


def test_generic_queries_naming_many_items_are_dropped() -> None:
    pairs = pd.DataFrame(
        {"query": ["stanley"] * 4 + ["staples", "staples"], "item_id": list("abcdab")}
    )
    kept, dropped = without_generic_queries(pairs, 3)
    assert dropped == 1 and kept["query"].tolist() == ["staples", "staples"]
    assert without_generic_queries(pairs, None) == (pairs, 0)


def test_other_known_positives_of_a_query_are_masked_not_negatives() -> None:
    batch = pd.DataFrame(
        {
            "query": ["dog collar", "pet collar", "serum"],
            "item_id": ["A1", "A7", "A4"],
            "negative_id": ["A4", "A1", "A5"],
        }
    )
    positives = {"dog collar": {"A1", "A7"}, "pet collar": {"A7", "A1"}, "serum": {"A4"}}
    mask = known_positive_mask(batch, positives)
    # Candidates: A1 A7 A4 (positives), then A4 A1 A5 (mined negatives).
    assert mask.tolist() == [
        [False, True, False, False, True, False],
        [True, False, False, False, True, False],
        [False, False, False, True, False, False],
    ]
    torch = pytest.importorskip("torch")

    class Identity(torch.nn.Module):
        def forward(self, features):
            return {"sentence_embedding": features["x"]}

    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # item 1 looks exactly like item 0
    two = pd.DataFrame({"query": ["a", "b"], "item_id": ["X", "Y"]})
    plain = multi_positive_loss(Identity(), [{"x": q}, {"x": d}], np.zeros((2, 2), bool), 20.0)
    masked = multi_positive_loss(
        Identity(),
        [{"x": q}, {"x": d}],
        known_positive_mask(two, {"a": {"X", "Y"}, "b": {"Y"}}),
        20.0,
    )
    assert masked < plain  # query a no longer pays for ranking its other positive Y first


@pytest.fixture
def pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "query": ["dog collar", "dog collar", "serum", "cat tree", "sander", "speaker"],
            "item_id": ["A1", "A7", "A4", "A3", "A5", "A6"],
        }
    )


def test_mined_negatives_are_never_a_positive_of_the_query(
    catalog: pd.DataFrame, pairs: pd.DataFrame
) -> None:
    engine = SearchEngine.build(catalog, SearchConfig(mode="bm25"))
    triples = training_triples(pairs, engine, FineTuneConfig(mine_depth=5))
    texts = dict(zip(engine.table.frame["item_id"], engine.table.texts(range(8), ["title"])))
    collar = triples[triples["query"] == "dog collar"]
    assert len(collar) == 2
    for negative in collar["negative"]:
        assert texts["A1"] not in negative and texts["A7"] not in negative
    assert (triples["positive"] != triples["negative"]).all()
    with pytest.raises(ValueError, match="not in the catalog"):
        training_triples(pairs.assign(item_id="ZZ"), engine, FineTuneConfig())


def test_repeated_log_pairs_are_kept_only_when_asked(
    catalog: pd.DataFrame, pairs: pd.DataFrame
) -> None:
    engine = SearchEngine.build(catalog, SearchConfig(mode="bm25"))
    clicks = pd.concat([pairs, pairs.iloc[[2, 2]]], ignore_index=True)  # "serum" clicked 3 times
    once = training_triples(clicks, engine, FineTuneConfig(hard_negatives=False))
    counted = training_triples(clicks, engine, FineTuneConfig(keep_repeats=True))
    assert (once["query"] == "serum").sum() == 1
    assert (counted["query"] == "serum").sum() == 3 and len(counted) == len(clicks)


def test_a_few_steps_give_a_loadable_model_with_a_new_identity(
    catalog: pd.DataFrame, pairs: pd.DataFrame, tmp_path: Path
) -> None:
    engine = SearchEngine.build(catalog, SearchConfig(mode="bm25"))
    config = FineTuneConfig(batch_size=2, max_steps=2, max_seq_length=24)
    triples = training_triples(pairs, engine, config)
    seen = []
    out = fine_tune(triples, tmp_path / "model", config, on_stage=lambda s, f: seen.append(f))
    assert seen[-1] == 1.0 and len(seen) == 2
    tuned = TextEncoder(out, cache_dir=tmp_path / "cache")
    assert tuned.encode(["dog collar"]).shape == (1, 384)
    assert tuned.identity != TextEncoder(cache_dir=tmp_path / "cache").identity


def _weights_digest(folder: Path) -> str:
    import hashlib

    return hashlib.sha1((folder / "model.safetensors").read_bytes()).hexdigest()


def test_the_best_validation_checkpoint_is_saved_and_patience_stops_the_run(
    catalog: pd.DataFrame, pairs: pd.DataFrame, tmp_path: Path
) -> None:
    engine = SearchEngine.build(catalog, SearchConfig(mode="bm25"))
    config = FineTuneConfig(
        batch_size=2, epochs=3, max_seq_length=24, checkpoints=9, patience=2, hard_negatives=False
    )
    triples = training_triples(pairs, engine, config)
    scripted = iter([0.50, 0.90, 0.70, 0.60, 0.95])  # falls twice after the 2nd: stop at the 4th
    scored: list[str] = []

    def score(folder: Path) -> float:
        scored.append(_weights_digest(folder))
        return next(scripted)

    out = fine_tune(triples, tmp_path / "model", config, score=score)
    record = training_record(out)
    curve = record["checkpoints"]
    assert [point["validation"] for point in curve] == [0.50, 0.90, 0.70, 0.60]
    assert [point["step"] for point in curve] == [1, 2, 3, 4] and record["steps"] > 4
    assert record["steps_run"] == 4 and record["best_step"] == 2
    assert all(point["loss"] > 0 for point in curve)
    planned = [round(step.epoch, 3) for step in training_plan(triples, config)]
    assert [point["epoch"] for point in curve] == planned[:4] and planned[-1] == 3.0
    assert len(set(scored)) == 4  # each checkpoint was a different model
    assert _weights_digest(out) == scored[1]  # the 2nd checkpoint's weights were shipped
    assert not (out / "checkpoint").exists()


def test_without_a_scorer_the_last_step_is_kept_and_nothing_is_scored(
    catalog: pd.DataFrame, pairs: pd.DataFrame, tmp_path: Path
) -> None:
    engine = SearchEngine.build(catalog, SearchConfig(mode="bm25"))
    config = FineTuneConfig(batch_size=2, max_steps=2, max_seq_length=24, checkpoints=2)
    out = fine_tune(training_triples(pairs, engine, config), tmp_path / "model", config)
    record = training_record(out)
    assert record["checkpoints"] == [] and record["steps_run"] == 2 == record["best_step"]
    assert training_record(tmp_path) == {}
