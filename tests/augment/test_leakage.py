"""No strategy leaks a held-out target: samples are built from ``Split.train`` and item text only.

Every user's validation and test targets are items of their own that occur nowhere in training,
and their text embeddings are orthogonal to every other item, so text neighbours cannot reach
them either. A held-out item in a user's generated row would then have to come from the
validation or test cases themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopaug.augment import STRATEGIES, AugmentContext, make_strategy
from shopaug.data.sequences import Sequences
from shopaug.data.splits import Split, make_split
from shopaug.models.augmented import AugmentPlan, augment_train
from shopaug.models.base import ItemSide, TrainData

N_USERS = 40
N_WARM = 30
N_ITEMS = N_WARM + 2 * N_USERS
#: Parameters that make every strategy produce plenty of samples.
PARAMS = {
    "crop": {"copies": 3},
    "mask": {"copies": 3},
    "reorder": {"copies": 3},
    "substitute": {"copies": 3, "ratio": 0.5},
    "insert": {"copies": 3, "ratio": 0.5},
    "cold-neighbours": {"max_events": 6, "min_similarity": 0.05, "rows_per_neighbour": 5},
    # The fake backend answers yes or no by a hash of the prompt.
    "llm-cold": {
        "generator": "fake",
        "generator_params": {"use_cache": False},
        "max_events": 6,
        "min_similarity": 0.05,
        "audit_users": 10,  # the audit's prompts are checked too
        "force": True,  # the fake judge fails its audit; judge anyway to check every prompt
    },
}


def catalog() -> pd.DataFrame:
    """Titles etc. for the strategies that write prompts."""
    return pd.DataFrame(
        {
            "title": [f"item {i}" for i in range(N_ITEMS)],
            "brand": "",
            "categories": "",
            "description": "",
        }
    )


def dataset() -> tuple[Sequences, np.ndarray]:
    """Rows of 4..9 random warm items, then the user's own validation and test item."""
    rng = np.random.default_rng(11)
    rows = [
        [
            *rng.integers(0, N_WARM, size=rng.integers(4, 10)).tolist(),
            N_WARM + 2 * u,
            N_WARM + 2 * u + 1,
        ]
        for u in range(N_USERS)
    ]
    # Warm items: positive vectors, so every warm pair has similarity > 0. Held-out items: one
    # axis each, similarity 0 to everything, below every warm neighbour.
    vectors = np.zeros((N_ITEMS, 8 + 2 * N_USERS), dtype=np.float32)
    vectors[:N_WARM, :8] = rng.random((N_WARM, 8)) + 0.1
    vectors[N_WARM:, 8:] = np.eye(2 * N_USERS)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Sequences.from_lists([f"user{u}" for u in range(N_USERS)], rows), vectors


def held_out(split: Split) -> set[tuple[str, int]]:
    pairs = set()
    for cases in (split.valid, split.test):
        pairs |= set(zip(cases.inputs.users.tolist(), cases.targets.tolist(), strict=True))
    return pairs


def leaked(users: np.ndarray, rows: list[list[int]], pairs: set[tuple[str, int]]) -> list:
    return [
        (u, i) for u, row in zip(users.tolist(), rows, strict=True) for i in row if (u, i) in pairs
    ]


@pytest.fixture(scope="module", params=["W", "S"])
def split_and_vectors(request) -> tuple[Split, np.ndarray]:
    sequences, vectors = dataset()
    split = make_split(request.param, sequences, N_ITEMS)
    assert split.train.items.max() < N_WARM  # the fixture's premise: targets never in training
    return split, vectors


def strategy_variants() -> list[tuple[str, dict]]:
    variants = []
    for name in STRATEGIES:
        params = PARAMS.get(name, {})
        if name in ("substitute", "insert"):
            for correlation in ("text", "cooccurrence"):
                variants.append((name, {**params, "correlation": correlation}))
        else:
            variants.append((name, params))
    return variants


def test_every_registered_strategy_is_covered() -> None:
    assert set(PARAMS) == set(STRATEGIES)


@pytest.mark.parametrize(("name", "params"), strategy_variants())
def test_no_strategy_puts_a_users_held_out_target_in_their_rows(
    split_and_vectors, name, params
) -> None:
    split, vectors = split_and_vectors
    context = AugmentContext(split.train, N_ITEMS, vectors, catalog=catalog())
    out = make_strategy(name, **params).generate(context)
    assert len(out) > 0
    rows = out.sequences.to_lists()
    assert leaked(out.sequences.users, rows, held_out(split)) == []
    assert not (out.sequences.items >= N_WARM).any()


def test_augment_train_mixes_in_no_held_out_target(split_and_vectors) -> None:
    split, vectors = split_and_vectors
    train = TrainData(
        split.train,
        N_ITEMS,
        split.train_user_index,
        N_USERS,
        ItemSide(embeddings=vectors, catalog=catalog()),
        valid=split.valid,
    )
    plan = AugmentPlan(strategies=list(STRATEGIES), params=PARAMS, filters=[])
    outcome = augment_train(train, plan, seed=5)
    assert len(outcome.samples) > len(split.train)
    mixed = outcome.train.sequences
    assert leaked(mixed.users, mixed.to_lists(), held_out(split)) == []
    assert not (mixed.items >= N_WARM).any()


def test_text_neighbours_would_let_a_close_held_out_item_in(split_and_vectors) -> None:
    """The control: with held-out items given the text of warm ones, cold-neighbours does put
    them into rows, so the tests above would see a leak through text if there were one."""
    split, vectors = split_and_vectors
    twins = vectors.copy()
    twins[N_WARM:] = vectors[np.arange(N_ITEMS - N_WARM) % N_WARM]
    context = AugmentContext(split.train, N_ITEMS, twins)
    out = make_strategy("cold-neighbours", **PARAMS["cold-neighbours"]).generate(context)
    assert (out.sequences.items >= N_WARM).any()
