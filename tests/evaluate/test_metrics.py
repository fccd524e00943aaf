import math

import numpy as np
import pandas as pd
import pytest

from shopaug.data.errors import DataError
from shopaug.data.sequences import Sequences
from shopaug.evaluate.metrics import (
    beyond_accuracy,
    catalog_coverage,
    evaluate_lists,
    intra_list_diversity,
    item_popularity,
    list_metrics_per_user,
    mean_popularity,
    novelty,
)


def frame(rows: list[tuple], columns: tuple[str, ...] = ("user_id", "item_id", "rank")):
    return pd.DataFrame(rows, columns=list(columns))


def truth_of(rows: list[tuple]) -> pd.DataFrame:
    return frame(rows, ("user_id", "item_id"))


def d(position: int) -> float:
    return 1 / math.log2(position + 1)


# --- evaluate_lists --------------------------------------------------------------------------


def test_hand_computed_values_with_misses_and_users_without_predictions():
    pred = frame(
        [
            ("u1", "x", 1),
            ("u1", "a", 2),
            ("u1", "y", 3),
            ("u1", "b", 4),
            ("u2", "z", 1),  # u2 has predictions but no hit
            ("u2", "w", 2),
            ("u9", "a", 1),  # not in truth: ignored, counted
        ]
    )
    truth = truth_of([("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "d"), ("u3", "e")])
    result = evaluate_lists(pred, truth, ks=(2, 10))
    m = result["metrics"]
    # u1 is the only user with hits; u2 and u3 (no predictions at all) count as zeros.
    assert m["recall@2"] == pytest.approx((1 / 3) / 3)
    assert m["precision@2"] == pytest.approx((1 / 2) / 3)
    assert m["hit@2"] == pytest.approx(1 / 3)
    assert m["ndcg@2"] == pytest.approx(d(2) / (d(1) + d(2)) / 3)
    assert m["recall@10"] == pytest.approx((2 / 3) / 3)
    assert m["precision@10"] == pytest.approx((2 / 10) / 3)
    assert m["ndcg@10"] == pytest.approx((d(2) + d(4)) / (d(1) + d(2) + d(3)) / 3)
    assert m["mrr"] == pytest.approx((1 / 2) / 3)
    assert result["n_users"] == 3
    assert result["n_users_without_predictions"] == 1
    assert result["n_pred_users_not_in_truth"] == 1
    assert list(m) == [
        "recall@2",
        "ndcg@2",
        "precision@2",
        "hit@2",
        "recall@10",
        "ndcg@10",
        "precision@10",
        "hit@10",
        "mrr",
    ]


def test_equal_ranks_keep_file_order():
    truth = truth_of([("u", "b")])
    first = evaluate_lists(frame([("u", "a", 1), ("u", "b", 1)]), truth, ks=(1,))
    second = evaluate_lists(frame([("u", "b", 1), ("u", "a", 1)]), truth, ks=(1,))
    assert first["metrics"]["mrr"] == 0.5
    assert first["metrics"]["hit@1"] == 0.0
    assert second["metrics"]["mrr"] == 1.0
    assert second["metrics"]["hit@1"] == 1.0


def test_rank_not_row_order_decides_and_duplicates_keep_best_rank():
    # Rows shuffled; "c" listed twice (ranks 1 and 3): the copy at rank 3 is dropped, so "b"
    # (rank 4) ends at position 3, not 4.
    pred = frame([("u", "b", 4), ("u", "c", 3), ("u", "a", 2), ("u", "c", 1)])
    result = evaluate_lists(pred, truth_of([("u", "b")]), ks=(3,))
    assert result["metrics"]["mrr"] == pytest.approx(1 / 3)
    assert result["metrics"]["hit@3"] == 1.0
    assert result["metrics"]["ndcg@3"] == pytest.approx(d(3))


def test_k_larger_than_the_list():
    pred = frame([("u", "a", 1), ("u", "b", 2)])
    m = evaluate_lists(pred, truth_of([("u", "b"), ("u", "c")]), ks=(50,))["metrics"]
    assert m["recall@50"] == 0.5
    assert m["precision@50"] == pytest.approx(1 / 50)  # hits / k, even for a short list
    assert m["ndcg@50"] == pytest.approx(d(2) / (d(1) + d(2)))


def test_ideal_dcg_is_capped_at_k():
    truth = truth_of([("u", item) for item in "abcde"])
    pred = frame([("u", "a", 1), ("u", "b", 2), ("u", "z", 3)])
    m = evaluate_lists(pred, truth, ks=(2, 3))["metrics"]
    assert m["ndcg@2"] == pytest.approx(1.0)  # two hits in two slots is perfect at k=2
    assert m["ndcg@3"] == pytest.approx((d(1) + d(2)) / (d(1) + d(2) + d(3)))
    assert m["recall@2"] == pytest.approx(2 / 5)


def test_numeric_ids_in_one_file_match_text_ids_in_the_other():
    pred = frame([(1, 10, 1), (2, 20, 1)])
    truth = truth_of([("1", "10"), ("2", "99")])
    result = evaluate_lists(pred, truth, ks=(1,))
    assert result["metrics"]["hit@1"] == 0.5
    assert result["n_pred_users_not_in_truth"] == 0


def test_per_user_values_follow_truth_order():
    pred = frame([("b", "x", 1), ("a", "y", 1)])
    per_user = list_metrics_per_user(pred, truth_of([("a", "y"), ("b", "q")]), ks=(1,))
    assert per_user.users.tolist() == ["a", "b"]
    assert per_user.values["hit@1"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("rank", "shown"),
    [(0, "0"), (1.5, "1.5"), ("abc", "'abc'"), (None, "nan")],
)
def test_bad_rank_names_file_column_and_row(rank, shown):
    pred = frame([("u", "a", 1), ("u", "b", rank)])
    with pytest.raises(DataError) as info:
        evaluate_lists(pred, truth_of([("u", "a")]), pred_name="p.csv")
    message = str(info.value)
    assert message.startswith("p.csv: column 'rank', row 2:")
    assert shown in message
    assert "integer >= 1" in message


def test_missing_column_and_empty_id_are_named():
    with pytest.raises(DataError, match=r"t\.csv: missing required column 'item_id'"):
        evaluate_lists(frame([("u", "a", 1)]), frame([("u",)], ("user_id",)), truth_name="t.csv")
    with pytest.raises(DataError, match=r"pred: column 'user_id', row 1: .* is empty"):
        evaluate_lists(frame([(None, "a", 1)]), truth_of([("u", "a")]))
    with pytest.raises(DataError, match="truth: no rows"):
        evaluate_lists(frame([("u", "a", 1)]), truth_of([]))


def test_bad_cutoff_is_rejected():
    with pytest.raises(ValueError, match="cut-offs"):
        evaluate_lists(frame([("u", "a", 1)]), truth_of([("u", "a")]), ks=(0,))


# --- beyond accuracy -------------------------------------------------------------------------


def test_item_popularity_counts_distinct_users():
    train = Sequences.from_lists(["p", "q"], [[0, 0, 1], [1, 2]])
    assert item_popularity(train, 4).tolist() == [1, 2, 1, 0]


def test_coverage_ignores_padding():
    lists = np.array([[0, 1], [1, 2], [3, -1]])
    assert catalog_coverage(lists, 10) == pytest.approx(0.4)


def test_intra_list_diversity_by_hand():
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
    assert intra_list_diversity(np.array([[0, 1]]), emb) == pytest.approx(1.0)
    assert intra_list_diversity(np.array([[0, 2]]), emb) == pytest.approx(0.0)
    assert intra_list_diversity(np.array([[0, 1, 2]]), emb) == pytest.approx(2 / 3)
    assert intra_list_diversity(np.array([[0, 1], [0, 2]]), emb) == pytest.approx(0.5)
    # A zero embedding has no direction: similarity 0. A one-item list has no pairs: skipped.
    assert intra_list_diversity(np.array([[0, 3], [2, -1]]), emb) == pytest.approx(1.0)


def test_intra_list_diversity_matches_pairwise_loop():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 5))
    lists = rng.integers(0, 30, size=(7, 4))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    naive = np.mean(
        [
            np.mean([1 - unit[a] @ unit[b] for i, a in enumerate(row) for b in row[i + 1 :]])
            for row in lists
        ]
    )
    assert intra_list_diversity(lists, emb) == pytest.approx(naive)


def test_novelty_and_mean_popularity_by_hand():
    popularity = np.array([3, 0, 1])  # of 3 training users
    lists = np.array([[0, 1], [2, 1]])
    # p = (pop + 1) / (3 + 1): 1, 1/4, 1/2 -> 0, 2, 1 bits
    assert novelty(lists, popularity, n_users=3) == pytest.approx((0 + 2 + 1 + 2) / 4)
    assert mean_popularity(lists, popularity) == pytest.approx(1.0)
    summary = beyond_accuracy(lists, 3, popularity, 3, item_embeddings=np.eye(3))
    assert summary == pytest.approx(
        {"coverage": 1.0, "novelty": 1.25, "mean_popularity": 1.0, "diversity": 1.0}
    )
