"""MarkovChain: hand-computed transition probabilities, Dirichlet back-off, order, weights."""

from __future__ import annotations

import numpy as np
import pytest

from shopaug.data.sequences import Sequences
from shopaug.models.base import TrainData
from shopaug.models.markov import MarkovChain, transition_counts

# Transitions: 0->1 twice, 1->2 twice, 0->2 once; item 2 is never followed by anything.
# Popularity: items 0, 1: 3 events, item 2: 4 -> distribution (0.3, 0.3, 0.4); item 3 unseen.
ROWS = [[0, 1, 2], [0, 1], [0, 2], [1, 2], [2]]
POP = np.array([0.3, 0.3, 0.4, 0.0])


def fit(model: MarkovChain, rows=ROWS, weights=None) -> MarkovChain:
    seqs = Sequences.from_lists(list(range(len(rows))), rows, weights)
    return model.fit(TrainData(seqs, n_items=4))


def score(model: MarkovChain, *histories: list[int]) -> np.ndarray:
    return model.score(Sequences.from_lists(list(range(len(histories))), list(histories)))


def test_transition_probabilities_without_smoothing() -> None:
    scores = score(fit(MarkovChain(smoothing=0.0, order=1)), [2, 0], [1])
    np.testing.assert_allclose(scores, [[0, 2 / 3, 1 / 3, 0], [0, 0, 1, 0]], rtol=1e-6)
    assert scores.dtype == np.float32


def test_smoothing_mixes_in_popularity_by_row_support() -> None:
    scores = score(fit(MarkovChain(smoothing=1.0, order=1)), [0])
    np.testing.assert_allclose(scores[0], (np.array([0, 2, 1, 0]) + POP) / 4, rtol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_unseen_last_item_and_empty_history_back_off_to_popularity(smoothing: float) -> None:
    model = fit(MarkovChain(smoothing=smoothing, order=1))
    np.testing.assert_allclose(score(model, [2], [3], []), np.tile(POP, (3, 1)), rtol=1e-6)


def test_higher_order_mixes_the_last_items_with_decay() -> None:
    model = fit(MarkovChain(smoothing=0.0, order=2, decay=0.5))
    # last item 1 (weight 1): P(.|1) = (0, 0, 1); item 0 before it (weight 0.5): (0, 2/3, 1/3).
    np.testing.assert_allclose(score(model, [2, 0, 1])[0], [0, 1 / 3, 1 + 1 / 6, 0], rtol=1e-6)


def test_transitions_are_weighted_by_the_next_event() -> None:
    counts = transition_counts(Sequences.from_lists([0], [[0, 1, 2]], [[1.0, 0.5, 2.0]]), 3)
    np.testing.assert_allclose(counts.toarray(), [[0, 0.5, 0], [0, 0, 2.0], [0, 0, 0]])


def test_weight_zero_events_are_skipped_without_breaking_the_chain() -> None:
    counts = transition_counts(Sequences.from_lists([0], [[0, 1, 2]], [[1.0, 0.0, 1.0]]), 3)
    np.testing.assert_allclose(counts.toarray(), [[0, 0, 1.0], [0, 0, 0], [0, 0, 0]])


def test_no_transition_crosses_from_one_user_to_the_next() -> None:
    counts = transition_counts(Sequences.from_lists([0, 1], [[0], [1, 2]]), 3)
    assert counts.nnz == 1 and counts[1, 2] == 1.0


@pytest.mark.parametrize("params", [{"order": 0}, {"smoothing": -1.0}])
def test_invalid_parameters_are_rejected(params: dict) -> None:
    with pytest.raises(ValueError):
        fit(MarkovChain(**params))
