from __future__ import annotations

import numpy as np

from shopaug.search.hybrid import (
    Ranked,
    fuse,
    reciprocal_rank_fusion,
    score_fusion,
    top_of_scores,
)


def ranked(slots: list[int], scores: list[float]) -> Ranked:
    return Ranked(np.array(slots), np.array(scores, dtype=float))


def test_rrf_rewards_items_both_lists_agree_on() -> None:
    keyword = ranked([1, 2, 3], [9.0, 5.0, 1.0])
    dense = ranked([2, 4, 5], [0.9, 0.8, 0.7])
    fused = reciprocal_rank_fusion([keyword, dense], rrf_k=60)
    assert fused.slots[0] == 2  # ranks 2 and 1 beat rank 1 and absent
    assert np.isclose(fused.scores[0], 1 / 62 + 1 / 61)
    assert set(fused.slots.tolist()) == {1, 2, 3, 4, 5}


def test_score_fusion_normalises_each_list_before_mixing() -> None:
    keyword = ranked([1, 2], [100.0, 0.0])  # raw BM25 scale would drown cosine scores
    dense = ranked([2, 1], [0.9, 0.1])
    fused = score_fusion([keyword, dense], [0.4, 0.6])
    assert fused.slots.tolist() == [2, 1]
    np.testing.assert_allclose(fused.scores, [0.6, 0.4])


def test_score_fusion_of_a_single_candidate_list_gives_it_full_weight() -> None:
    fused = fuse(ranked([5], [3.0]), ranked([], []), "score", dense_weight=0.25)
    assert fused.slots.tolist() == [5] and np.isclose(fused.scores[0], 0.75)


def test_top_of_scores_skips_zero_scores_and_disallowed_slots() -> None:
    scores = np.array([0.0, 2.0, 5.0, 1.0, 4.0])
    allowed = np.array([True, True, True, True, False])
    top = top_of_scores(scores, allowed, k=2)
    assert top.slots.tolist() == [2, 1]
    assert top_of_scores(scores, allowed, k=10).slots.tolist() == [2, 1, 3]
