"""augment_train: real rows first and untouched, generated rows weighted and attributed; the
Markov plausibility score the consistency filter uses."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from shopaug.data.sequences import Sequences
from shopaug.models.augmented import AugmentPlan, augment_train
from shopaug.models.base import ItemSide, TrainData
from shopaug.models.markov import MarkovChain

N_ITEMS = 24


def train_data() -> TrainData:
    rng = np.random.default_rng(2)
    rows = [rng.choice(20, size=rng.integers(3, 9), replace=False).tolist() for _ in range(30)]
    vectors = rng.normal(size=(N_ITEMS, 6)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return TrainData(
        Sequences.from_lists([f"u{i}" for i in range(30)], rows),
        N_ITEMS,
        user_index=np.arange(30) * 2 + 1,  # the dataset's user table has 61 rows
        n_users=61,
        items=ItemSide(embeddings=vectors),
    )


PLAN = AugmentPlan(
    strategies=["crop", "substitute", "cold-neighbours"],
    params={"crop": {"copies": 2}, "cold-neighbours": {"min_similarity": 0.3}},
    weight=0.5,
)


@pytest.fixture(scope="module")
def outcome():
    return augment_train(train_data(), PLAN, seed=3)


def test_real_rows_come_first_and_are_unchanged(outcome) -> None:
    real = train_data()
    mixed = outcome.train.sequences
    n = len(real.sequences)
    head = mixed.select_rows(np.arange(n))
    assert head.to_lists() == real.sequences.to_lists()
    assert head.users.tolist() == real.sequences.users.tolist()
    np.testing.assert_array_equal(head.weights, np.ones(real.sequences.n_events))
    np.testing.assert_array_equal(outcome.train.user_index[:n], real.user_index)
    assert len(mixed) == n + len(outcome.samples)
    assert outcome.train.n_users == 61 and outcome.train.n_items == N_ITEMS
    # Models can tell the real rows apart: they are marked, and the real view is the input.
    assert outcome.train.n_real_rows == n
    assert outcome.train.real_sequences.to_lists() == real.sequences.to_lists()
    assert real.real_sequences is real.sequences


def test_generated_rows_belong_to_their_source_user(outcome) -> None:
    real = train_data()
    n = len(real.sequences)
    samples = outcome.samples
    assert len(samples) > 0
    np.testing.assert_array_equal(outcome.train.user_index[n:], real.user_index[samples.source_row])
    np.testing.assert_array_equal(
        outcome.train.sequences.users[n:], real.sequences.users[samples.source_row]
    )
    assert outcome.train.sequences.to_lists()[n:] == samples.sequences.to_lists()


def test_generated_events_weigh_less_than_real_ones(outcome) -> None:
    real_events = train_data().sequences.n_events
    weights = outcome.train.sequences.weights[real_events:]
    assert len(weights) == outcome.samples.n_events > 0
    assert (weights < 1).all() and (weights <= PLAN.weight + 1e-6).all()
    expected = PLAN.weight * np.repeat(outcome.samples.score, outcome.samples.sequences.lengths)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


def test_summary_counts_add_up(outcome) -> None:
    summary = outcome.summary()
    assert list(summary["generated"]) == PLAN.strategies
    assert list(summary["removed"]) == PLAN.filters
    for name, generated in summary["generated"].items():
        removed = sum(r["by_origin"].get(name, 0) for r in summary["removed"].values())
        assert generated - removed == summary["kept"].get(name, 0)
    assert sum(summary["kept"].values()) == len(outcome.samples)
    for report in summary["removed"].values():
        assert report["removed"] == sum(report["by_origin"].values())
    assert summary["kept_events"] == outcome.samples.n_events
    assert summary["real_events"] == train_data().sequences.n_events
    assert outcome.filter_reports[0].before == sum(summary["generated"].values())


def test_the_default_ratio_cap_holds(outcome) -> None:
    assert outcome.samples.n_events <= 1.0 * train_data().sequences.n_events


def test_same_seed_same_training_data() -> None:
    a = augment_train(train_data(), PLAN, seed=3)
    b = augment_train(train_data(), PLAN, seed=3)
    assert a.train.sequences.to_lists() == b.train.sequences.to_lists()
    np.testing.assert_array_equal(a.train.sequences.weights, b.train.sequences.weights)


def test_plan_parameters_override_the_seed_and_are_checked() -> None:
    plan = AugmentPlan(strategies=["crop"], params={"crop": {"seed": 9}})
    assert plan.build_strategies(seed=1)[0].seed == 9
    assert AugmentPlan(strategies=["mask"]).build_strategies(seed=4)[0].seed == 4
    with pytest.raises(ValidationError, match="strategies"):
        AugmentPlan(strategies=[])
    with pytest.raises(ValidationError, match="weight"):
        AugmentPlan(strategies=["crop"], weight=2)
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        AugmentPlan(strategies=["nope"]).build_strategies()
    with pytest.raises(ValueError, match="unknown filter 'nope'"):
        AugmentPlan(strategies=["crop"], filters=["nope"]).build_filters()


def test_without_embeddings_text_strategies_name_themselves() -> None:
    data = train_data()
    data.items = None
    with pytest.raises(ValueError, match="'cold-neighbours' needs item text embeddings"):
        augment_train(data, AugmentPlan(strategies=["cold-neighbours"]))
    plain = augment_train(data, AugmentPlan(strategies=["crop", "reorder"]))
    assert len(plain.samples) > 0


# Transitions: 0->1 twice, 1->2 twice, 0->2 once; item 2 never precedes anything.
# Popularity: (0.3, 0.3, 0.4, 0) over 4 items.
ROWS = [[0, 1, 2], [0, 1], [0, 2], [1, 2], [2]]


def test_transition_log_likelihood_by_hand() -> None:
    model = MarkovChain(smoothing=1.0).fit(TrainData(Sequences.from_lists(range(5), ROWS), 4))
    rows = Sequences.from_lists(range(5), [[0, 1, 2], [2, 0], [1], [], [0, 3, 1]])
    # P(1|0) = (2 + 0.3) / (3 + 1); P(2|1) = (2 + 0.4) / (2 + 1); item 2 has no transitions,
    # so P(0|2) = pop(0) = 0.3; item 3 is unseen: P(3|0) = 0 (floored at 1e-12) and
    # P(1|3) = pop(1).
    expected = [
        (np.log(2.3 / 4) + np.log(2.4 / 3)) / 2,
        np.log(0.3),
        0.0,
        0.0,
        (np.log(1e-12) + np.log(0.3)) / 2,
    ]
    np.testing.assert_allclose(model.transition_log_likelihood(rows), expected, rtol=1e-5)


def test_transition_log_likelihood_ranks_seen_steps_above_unseen_ones() -> None:
    model = MarkovChain(smoothing=1.0).fit(TrainData(Sequences.from_lists(range(5), ROWS), 4))
    scores = model.transition_log_likelihood(Sequences.from_lists([0, 1], [[0, 1], [1, 0]]))
    assert scores[0] > scores[1]  # 0 -> 1 was seen twice, 1 -> 0 never


def test_transition_log_likelihood_needs_a_fitted_model() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        MarkovChain().transition_log_likelihood(Sequences.from_lists([0], [[0, 1]]))
