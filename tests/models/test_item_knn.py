"""ItemKNN: hand-computed cosine/Jaccard on a 3-item toy, top-k pruning, recency decay, weights."""

from __future__ import annotations

import numpy as np
import pytest

from shopaug.data.sequences import Sequences
from shopaug.models.base import TrainData
from shopaug.models.item_knn import ItemKNN

# Users of item 0: {0, 1}; item 1: {0, 1, 2}; item 2: {1, 2}.
ROWS = [[0, 1], [0, 1, 2], [1, 2]]
COS_01 = COS_12 = 2 / np.sqrt(6)
COS_02 = 1 / 2


def fit(model: ItemKNN, rows=ROWS, weights=None) -> ItemKNN:
    return model.fit(TrainData(Sequences.from_lists(list(range(len(rows))), rows, weights), 3))


def score(model: ItemKNN, history: list[int], weights: list[float] | None = None) -> np.ndarray:
    return model.score(
        Sequences.from_lists([0], [history], None if weights is None else [weights])
    )[0]


def test_cosine_similarity_rows_are_the_scores_of_one_item_histories() -> None:
    model = fit(ItemKNN(shrink=0.0, history_decay=1.0))
    expected = np.array([[0, COS_01, COS_02], [COS_01, 0, COS_12], [COS_02, COS_12, 0]])
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-6)
    np.testing.assert_allclose(score(model, [0]), expected[0], rtol=1e-6)


def test_history_scores_sum_similarity_rows_with_recency_decay() -> None:
    flat = fit(ItemKNN(shrink=0.0, history_decay=1.0))
    np.testing.assert_allclose(score(flat, [0, 2]), [COS_02, COS_01 + COS_12, COS_02], rtol=1e-6)
    decayed = fit(ItemKNN(shrink=0.0, history_decay=0.5))  # item 2 is last: weight 1, item 0: 0.5
    np.testing.assert_allclose(
        score(decayed, [0, 2]), [COS_02, 0.5 * COS_01 + COS_12, 0.5 * COS_02], rtol=1e-6
    )


def test_shrink_lowers_similarities_built_on_few_users() -> None:
    model = fit(ItemKNN(shrink=1.0))
    np.testing.assert_allclose(model.similarity_[0, 1], 2 / (np.sqrt(6) + 1), rtol=1e-6)
    np.testing.assert_allclose(model.similarity_[0, 2], 1 / 3, rtol=1e-6)


def test_jaccard_similarity() -> None:
    model = fit(ItemKNN(shrink=0.0, similarity="jaccard"))
    expected = np.array([[0, 2 / 3, 1 / 3], [2 / 3, 0, 2 / 3], [1 / 3, 2 / 3, 0]])
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-6)


def test_only_the_top_neighbors_of_each_item_are_kept() -> None:
    model = fit(ItemKNN(neighbors=1, shrink=0.0))
    # Item 1's two neighbours tie; the lower item index wins.
    rows, cols = model.similarity_.toarray().nonzero()
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0, 1]


def test_event_weights_change_the_similarity() -> None:
    weighted = fit(ItemKNN(shrink=0.0), weights=[[1, 1], [1, 1, 3], [1, 1]])
    # Item 2 now has the vector (0, 3, 1) over users, item 0 (1, 1, 0): cos = 3 / (sqrt2 sqrt10).
    np.testing.assert_allclose(weighted.similarity_[0, 2], 3 / np.sqrt(20), rtol=1e-6)


def test_unknown_similarity_is_rejected() -> None:
    with pytest.raises(ValueError, match="similarity"):
        fit(ItemKNN(similarity="pearson"))  # type: ignore[arg-type]
