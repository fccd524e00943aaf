import numpy as np
import pytest

from shopaug.data.sequences import Sequences
from shopaug.evaluate.ranking import (
    RankingResult,
    concat_results,
    evaluate_model,
    popularity_cuts,
    slice_masks,
)
from shopaug.models.base import Recommender
from shopaug.models.ranking import rank_targets


class FixedScores(Recommender):
    """Scores come from a fixed (users x items) matrix, looked up by the case's user index."""

    name = "fixed"

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix
        self.n_items_ = matrix.shape[1]

    def score(self, histories: Sequences, user_index: np.ndarray | None = None) -> np.ndarray:
        return self.matrix[user_index]  # a view: the evaluator must not write into it


def test_evaluate_model_is_independent_of_batch_size(random_cases):
    rng = np.random.default_rng(1)
    cases = random_cases(rng, n_users=37, n_items=30)
    matrix = rng.integers(0, 5, size=(37, 30)).astype(np.float32)
    model = FixedScores(matrix)
    results = [evaluate_model(model, cases, batch_size=b, ks=(5, 10)) for b in (1, 4, 1024)]
    for other in results[1:]:
        np.testing.assert_array_equal(other.ranks, results[0].ranks)
        np.testing.assert_array_equal(other.top_items, results[0].top_items)
    result = results[0]
    np.testing.assert_array_equal(result.ranks, rank_targets(matrix, cases.targets, cases.inputs))
    expected_lists, _ = model.recommend(cases.inputs, k=10, user_index=cases.user_index)
    np.testing.assert_array_equal(result.top_items, expected_lists)
    np.testing.assert_array_equal(matrix, model.matrix)  # masking happened on a copy
    assert result.users.tolist() == [f"user{u}" for u in range(37)]
    assert set(result.per_case()) == {"recall@5", "ndcg@5", "recall@10", "ndcg@10", "mrr"}
    assert result.seconds >= 0


def test_results_of_consecutive_pieces_join_into_the_whole(random_cases):
    rng = np.random.default_rng(2)
    cases = random_cases(rng, n_users=23, n_items=30)
    model = FixedScores(rng.random((23, 30)).astype(np.float32))
    whole = evaluate_model(model, cases, ks=(5, 10))
    pieces = [
        evaluate_model(model, cases.select(np.arange(a, b)), ks=(5, 10))
        for a, b in ((0, 9), (9, 23))
    ]
    joined = concat_results(pieces, seconds=1.5)
    for name in ("ranks", "targets", "top_items", "users"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(whole, name))
    assert (joined.n_items, joined.ks, joined.seconds) == (30, whole.ks, 1.5)
    with pytest.raises(ValueError, match="no results"):
        concat_results([], seconds=0.0)


def test_means_over_a_mask(random_cases):
    rng = np.random.default_rng(2)
    cases = random_cases(rng, n_users=10, n_items=8)
    result = evaluate_model(FixedScores(rng.random((10, 8)).astype(np.float32)), cases, ks=(3,))
    mask = np.arange(10) < 4
    recall = (result.ranks < 3).astype(float)
    assert result.means()["recall@3"] == pytest.approx(recall.mean())
    assert result.means(mask)["recall@3"] == pytest.approx(recall[:4].mean())


def test_wrong_score_shape_is_reported(random_cases):
    class Broken(FixedScores):
        def score(self, histories, user_index=None):
            return np.zeros((len(histories), 3), dtype=np.float32)

    cases = random_cases(np.random.default_rng(3), n_users=4, n_items=6)
    with pytest.raises(ValueError, match=r"returned shape \(4, 3\), expected \(4, 6\)"):
        evaluate_model(Broken(np.zeros((4, 6))), cases)


def test_popularity_terciles_keep_ties_together():
    popularity = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8])
    targets = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8])
    masks = slice_masks(targets, popularity)
    assert np.flatnonzero(masks["pop_low"]).tolist() == [0, 1, 2]
    assert np.flatnonzero(masks["pop_mid"]).tolist() == [3, 4, 5]
    assert np.flatnonzero(masks["pop_high"]).tolist() == [6, 7, 8]

    # Four cases share popularity 0 (e.g. cold targets): all go to the low group.
    tied = slice_masks(np.array([0, 0, 1, 1, 2, 3]), np.array([0, 0, 5, 9]))
    assert tied["pop_low"].tolist() == [True, True, True, True, False, False]
    assert tied["pop_mid"].tolist() == [False] * 4 + [True, False]
    assert tied["pop_high"].tolist() == [False] * 5 + [True]
    total = tied["pop_low"].astype(int) + tied["pop_mid"] + tied["pop_high"]
    assert total.tolist() == [1] * 6
    assert popularity_cuts(np.array([])) == (0.0, 0.0)


def test_popularity_cut_goes_where_groups_come_out_closest_to_thirds():
    # 12 cases, a block of five at popularity 2: cutting below it (2 low) is closer to 4 than
    # cutting above it (7 low); the other ten split 5 / 5.
    case_popularity = np.array([1, 1, 2, 2, 2, 2, 2, 3, 4, 5, 6, 7])
    assert popularity_cuts(case_popularity) == (1.0, 2.0)
    masks = slice_masks(np.arange(12), case_popularity)
    assert [int(masks[n].sum()) for n in ("pop_low", "pop_mid", "pop_high")] == [2, 5, 5]


def test_cold_and_warm_slices():
    cold = np.array([False, True, False])
    masks = slice_masks(np.array([1, 0, 1, 2]), np.array([5, 0, 3]), cold_mask=cold)
    assert masks["all"].all()
    assert masks["cold"].tolist() == [True, False, True, False]
    assert masks["warm"].tolist() == [False, True, False, True]
    assert "cold" not in slice_masks(np.array([1]), np.array([5, 0, 3]))


def test_ranking_results_round_trip(tmp_path):
    result = RankingResult(
        ranks=np.array([0, 5]),
        targets=np.array([3, 4]),
        top_items=np.array([[3, 1], [2, 1]]),
        users=np.array(["u1", "u2"], dtype=object),
        n_items=9,
        ks=(10, 20),
        seconds=0.5,
    )
    result.save(tmp_path / "r.npz")
    back = RankingResult.load(tmp_path / "r.npz")
    assert back.ks == (10, 20) and back.n_items == 9 and back.seconds == 0.5
    for name in ("ranks", "targets", "top_items", "users"):
        assert np.array_equal(getattr(back, name), getattr(result, name))
