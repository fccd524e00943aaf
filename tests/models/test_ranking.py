"""The one ranking rule of training and evaluation: ties, seen items, NaN scores, metrics."""

import math

import numpy as np

from shopaug.data.sequences import Sequences
from shopaug.models.base import top_k
from shopaug.models.ranking import rank_metrics, rank_targets


def naive_ranks(scores: np.ndarray, targets: np.ndarray, histories: Sequences) -> list[int]:
    out = []
    for r, target in enumerate(targets):
        row = scores[r].astype(float).copy()
        seen = histories.row(r)
        row[seen] = -np.inf
        if target in seen:
            out.append(len(row) - 1)
            continue
        better = sum(s > row[target] for s in row)
        tied_lower = sum(row[i] == row[target] for i in range(target))
        out.append(better + tied_lower)
    return out


def test_rank_targets_matches_a_loop_and_top_k_with_ties_and_seen_items(random_cases):
    rng = np.random.default_rng(0)
    cases = random_cases(rng, n_users=60, n_items=25)
    for r in range(0, 60, 7):  # some targets inside their own history: excluded, worst rank
        if len(cases.inputs.row(r)):
            cases.targets[r] = cases.inputs.row(r)[-1]
    scores = rng.integers(0, 4, size=(60, 25)).astype(np.float32)  # many ties
    before = scores.copy()
    ranks = rank_targets(scores, cases.targets, cases.inputs)
    assert ranks.tolist() == naive_ranks(scores, cases.targets, cases.inputs)
    assert (ranks == 24).sum() >= 5
    np.testing.assert_array_equal(scores, before)  # the caller's scores are not modified

    masked = scores.copy()
    masked[cases.inputs.row_ids(), cases.inputs.items] = -np.inf
    full_order = top_k(masked, 25)
    for r, target in enumerate(cases.targets):
        if target not in cases.inputs.row(r):
            assert np.flatnonzero(full_order[r] == target)[0] == ranks[r]


def test_target_in_history_gets_the_worst_rank():
    scores = np.array([[5.0, 1.0, 0.0]], dtype=np.float32)
    history = Sequences.from_lists(["u"], [[0]])
    assert rank_targets(scores, np.array([0]), history).tolist() == [2]
    assert rank_targets(scores, np.array([0])).tolist() == [0]


def test_rank_metrics_by_hand():
    m = rank_metrics(np.array([0, 9, 10, 49, 100]), ks=(10, 50))
    assert m["recall@10"].tolist() == [1, 1, 0, 0, 0]
    assert m["recall@50"].tolist() == [1, 1, 1, 1, 0]
    np.testing.assert_allclose(m["ndcg@10"], [1, 1 / math.log2(11), 0, 0, 0])
    np.testing.assert_allclose(
        m["ndcg@50"], [1, 1 / math.log2(11), 1 / math.log2(12), 1 / math.log2(51), 0]
    )
    np.testing.assert_allclose(m["mrr"], [1, 1 / 10, 1 / 11, 1 / 50, 1 / 101])


def test_a_nan_target_score_is_the_worst_rank_not_the_best():
    """A diverged model (NaN scores) must not look perfect on validation."""
    scores = np.array([[0.2, np.nan, 0.9]], dtype=np.float32)
    assert rank_targets(scores, np.array([1])).tolist() == [2]
    assert rank_metrics(rank_targets(scores, np.array([1])), (10,))["ndcg@10"].tolist() == [
        1 / math.log2(4)
    ]
