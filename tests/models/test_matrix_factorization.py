"""ALS and BPR wrappers: block structure, fold-in versus known users, weights, threading."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from shopaug.data.sequences import Sequences
from shopaug.models.base import TrainData
from shopaug.models.matrix_factorization import ALS, BPR, _ImplicitFactorization


def block_data(weights: bool = False) -> TrainData:
    """Users 0-19 buy among items 0-5, users 20-39 among items 6-11, never across."""
    rng = np.random.default_rng(0)
    rows = [(rng.choice(6, size=4, replace=False) + 6 * (u >= 20)).tolist() for u in range(40)]
    w = [rng.uniform(0.5, 2.0, size=4).tolist() for _ in rows] if weights else None
    # Training rows are dataset users 100..139, to check the user-index lookup.
    seqs = Sequences.from_lists(list(range(40)), rows, w)
    return TrainData(seqs, n_items=12, user_index=np.arange(100, 140), n_users=150)


def fast_als(**params) -> ALS:
    return ALS(
        **{"factors": 4, "iterations": 10, "regularization": 0.1, "num_threads": 1, **params}
    )


def fast_bpr(**params) -> BPR:
    defaults = {"factors": 4, "iterations": 300, "learning_rate": 0.05, "num_threads": 1}
    return BPR(**{**defaults, **params})


MODELS = [pytest.param(fast_als, id="als"), pytest.param(fast_bpr, id="bpr")]


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("fold_in", [True, False])
def test_recommendations_stay_inside_the_users_block(make, fold_in: bool) -> None:
    model = make(fold_in=fold_in).fit(block_data())
    histories = Sequences.from_lists([0, 1], [[0, 1], [6, 7]])
    items, _ = model.recommend(histories, k=3, user_index=np.array([100, 120]))
    assert set(items[0]) <= {2, 3, 4, 5}
    assert set(items[1]) <= {8, 9, 10, 11}
    scores = model.score(histories, user_index=np.array([100, 120]))
    assert scores[0, :6].mean() > scores[0, 6:].mean()
    assert scores[1, 6:].mean() > scores[1, :6].mean()


@pytest.mark.parametrize("make", MODELS)
def test_known_users_use_learned_factors_only_without_fold_in(make) -> None:
    model = make(fold_in=False).fit(block_data())
    histories = Sequences.from_lists([0, 1, 2], [[0, 1], [0, 1], [0, 1]])
    scores = model.score(histories, user_index=np.array([105, -1, 149]))
    learned = model.model_.user_factors[5] @ model.model_.item_factors.T
    np.testing.assert_allclose(scores[0], learned, rtol=1e-5)
    # An unknown user (-1) and a dataset user without a training row are folded in alike.
    np.testing.assert_array_equal(scores[1], scores[2])
    folded = make(fold_in=True).fit(block_data()).score(histories.select_rows([1]))
    np.testing.assert_allclose(scores[1], folded[0], rtol=1e-5)


@pytest.mark.parametrize("make", MODELS)
def test_scores_are_float32_for_every_item(make) -> None:
    model = make().fit(block_data())
    scores = model.score(Sequences.from_lists([0, 1], [[0], []]))
    assert scores.shape == (2, 12) and scores.dtype == np.float32


def test_empty_history_scores_zero_with_als_and_item_bias_with_bpr() -> None:
    empty = Sequences.from_lists([0], [[]])
    np.testing.assert_array_equal(fast_als().fit(block_data()).score(empty)[0], 0.0)
    bpr = fast_bpr(iterations=5).fit(block_data())
    np.testing.assert_allclose(bpr.score(empty)[0], bpr.model_.item_factors[:, -1], rtol=1e-6)


def test_als_confidence_follows_event_weights() -> None:
    plain = fast_als().fit(block_data())
    weighted = fast_als().fit(block_data(weights=True))
    assert not np.allclose(plain.model_.item_factors, weighted.model_.item_factors)


def test_bpr_uses_weights_only_as_presence_in_training() -> None:
    plain = fast_bpr(iterations=5).fit(block_data())
    weighted = fast_bpr(iterations=5).fit(block_data(weights=True))
    np.testing.assert_array_equal(plain.model_.item_factors, weighted.model_.item_factors)


def test_bpr_fold_in_is_the_weighted_mean_of_item_factors_with_unit_bias() -> None:
    model = fast_bpr(iterations=5).fit(block_data())
    history = Sequences.from_lists([0], [[2, 3]], [[1.0, 3.0]])
    factors = model.model_.item_factors
    user = (factors[2] + 3 * factors[3]) / 4
    user[-1] = 1.0
    np.testing.assert_allclose(model.score(history)[0], factors @ user, rtol=1e-5)


@pytest.mark.parametrize("make", MODELS)
def test_fit_is_reproducible_with_a_seed_and_quiet(make) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # implicit's BLAS-threads warning would fail the test
        first = make().fit(block_data())
    second = make().fit(block_data())
    np.testing.assert_array_equal(first.model_.item_factors, second.model_.item_factors)


def test_base_hooks_are_abstract() -> None:
    with pytest.raises(NotImplementedError):
        _ImplicitFactorization().fit(block_data())
