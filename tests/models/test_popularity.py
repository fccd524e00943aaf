"""Popularity and per-category popularity: weighted counts, category tiers, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from shopaug.data.sequences import Sequences
from shopaug.models.base import ItemSide, TrainData
from shopaug.models.popularity import CategoryPopularity, Popularity

CATEGORIES = np.array(["a", "a", "b", "b", ""], dtype=object)


def train(rows: list[list[int]], weights: list[list[float]] | None = None) -> TrainData:
    seqs = Sequences.from_lists(list(range(len(rows))), rows, weights)
    return TrainData(seqs, n_items=5, items=ItemSide(categories=CATEGORIES))


def ranking(model: Popularity, history: list[int]) -> list[int]:
    scores = model.score(Sequences.from_lists([0], [history]))[0]
    return np.argsort(-scores, kind="stable").tolist()


# Weighted counts: item 0: 3, item 1: 1, item 2: 2.5, item 3: 0.5, item 4: 4 (its weight-0 event adds 0).
ROWS = [[0, 1, 4], [0, 2, 4], [0, 2, 3, 4], [4, 4]]
WEIGHTS = [[1, 1, 1], [1, 2, 1], [1, 0.5, 0.5, 1], [1, 0]]


def test_overall_popularity_is_the_weighted_count_and_same_for_every_row() -> None:
    model = Popularity().fit(train(ROWS, WEIGHTS))
    scores = model.score(Sequences.from_lists([0, 1], [[0], []]))
    assert scores.shape == (2, 5) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores[0], scores[1])
    np.testing.assert_allclose(
        scores[0] / scores[0, 0], np.array([3, 1, 2.5, 0.5, 4]) / 3, rtol=1e-6
    )
    assert ranking(model, []) == [4, 0, 2, 1, 3]


def test_weight_zero_events_count_nothing() -> None:
    only_zero = train([[0, 1], [1, 2]], [[1, 0], [0, 1]])
    scores = Popularity().fit(only_zero).score(Sequences.from_lists([0], [[]]))[0]
    assert scores[1] == scores[3] == 0.0 < scores[0] == scores[2]


def test_category_mode_ranks_the_main_category_first_then_others_then_unlabelled() -> None:
    model = CategoryPopularity().fit(train(ROWS))  # unweighted counts: 0:3 1:1 2:2 3:1 4:5
    # History mostly "b" (items 2, 3), once "a": b items by popularity, then a, then the rest.
    assert ranking(model, [2, 3, 1]) == [2, 3, 0, 1, 4]
    assert ranking(model, [1]) == [0, 1, 4, 2, 3]


def test_category_mode_falls_back_to_popularity_without_labelled_history() -> None:
    model = CategoryPopularity().fit(train(ROWS))
    assert ranking(model, []) == ranking(model, [4]) == [4, 0, 2, 1, 3]


def test_category_mode_uses_event_weights_of_the_history() -> None:
    model = CategoryPopularity().fit(train(ROWS))
    history = Sequences.from_lists([0], [[0, 2, 3]], [[3.0, 1.0, 1.0]])
    assert np.argsort(-model.score(history)[0], kind="stable").tolist()[:2] == [0, 1]


def test_category_mode_needs_categories() -> None:
    data = TrainData(Sequences.from_lists([0], [[0, 1]]), n_items=5)
    with pytest.raises(ValueError, match="categories"):
        Popularity(by_category=True).fit(data)
