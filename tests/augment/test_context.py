"""AugmentContext: exact text neighbours (FAISS), co-occurrence neighbours, and its checks."""

from __future__ import annotations

import numpy as np
import pytest

from shopaug.augment import ColdNeighbours, Insert, Substitute
from shopaug.augment.context import AugmentContext, text_neighbours
from shopaug.data.sequences import Sequences


def unit(*angles_deg: float) -> np.ndarray:
    """Unit vectors in the plane at the given angles: cosine = cos(angle difference)."""
    rad = np.deg2rad(angles_deg)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


# Items 0..3 at 0, 10, 30 and 90 degrees.
PLANE = unit(0, 10, 30, 90)
COS = np.cos(np.deg2rad([10, 20, 30, 60, 80, 90]))  # 10, 20, 30, 60, 80, 90 degrees apart


def test_text_neighbours_exclude_self_and_are_sorted_by_similarity() -> None:
    found = text_neighbours(PLANE, k=2)
    assert found.items.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    c10, c20, c30, c60, c80, _ = COS
    np.testing.assert_allclose(
        found.scores, [[c10, c30], [c10, c20], [c20, c30], [c60, c80]], atol=1e-6
    )


def test_text_neighbours_pad_with_minus_one_when_fewer_candidates() -> None:
    found = text_neighbours(PLANE, k=5)
    assert found.items.shape == (4, 5)
    assert found.items[0].tolist() == [1, 2, 3, -1, -1]
    assert (found.items[:, 3:] == -1).all()
    assert (found.scores[:, 3:] == 0).all()


def test_text_neighbours_among_candidates_keep_every_candidate_of_an_outsider() -> None:
    # Item 2 is not a candidate: both candidates are its neighbours; 0 and 1 have one each.
    found = text_neighbours(PLANE, k=3, candidates=np.array([0, 1]))
    assert found.items.tolist() == [[1, -1, -1], [0, -1, -1], [1, 0, -1], [1, 0, -1]]
    np.testing.assert_allclose(found.scores[2, :2], COS[[1, 2]], atol=1e-6)


def test_text_neighbours_without_candidates_are_all_padding() -> None:
    found = text_neighbours(PLANE, k=2, candidates=np.zeros(0, dtype=np.int64))
    assert (found.items == -1).all() and (found.scores == 0).all()


# Items 0, 1, 3 are warm (they have training events); 2 is cold.
WARM_ROWS = Sequences.from_lists(["u", "v"], [[0, 1], [3, 0]])


def test_warm_only_neighbours_are_items_with_training_events() -> None:
    context = AugmentContext(WARM_ROWS, n_items=4, embeddings=PLANE, max_neighbours=3)
    warm = context.text_neighbours(warm_only=True)
    assert warm.items[2].tolist() == [1, 0, 3]  # the cold item gets all three warm items
    assert warm.items[0].tolist() == [1, 3, -1]
    assert 2 not in warm.items
    assert 2 in context.text_neighbours().items  # without the restriction it is a candidate
    assert context.item_counts.tolist() == [2, 1, 0, 1]


def test_neighbour_tables_are_computed_once() -> None:
    context = AugmentContext(WARM_ROWS, n_items=4, embeddings=PLANE)
    context.prepare()
    assert context.text_neighbours() is context.text_neighbours()
    assert context.cooccurrence_neighbours() is context.cooccurrence_neighbours()
    assert context.text_neighbours(warm_only=True) is not context.text_neighbours()


def test_cooccurrence_neighbours_by_cosine_of_row_incidence() -> None:
    # Rows holding each item: 0: {r0, r1}, 1: {r0, r1}, 2: {r0, r2}, 3: {r2}, 4: none.
    # Shared rows: (0,1) 2, (0,2) 1, (1,2) 1, (2,3) 1; a repeat inside a row counts once.
    rows = Sequences.from_lists([0, 1, 2], [[0, 1, 2], [0, 1, 1], [2, 3]])
    found = AugmentContext(rows, n_items=5, max_neighbours=3).cooccurrence_neighbours()
    half, root = 0.5, 1 / np.sqrt(2)
    assert found.items.tolist() == [
        [1, 2, -1],
        [0, 2, -1],
        [3, 0, 1],  # 0 and 1 tie at 1/2: lower index first
        [2, -1, -1],
        [-1, -1, -1],
    ]
    np.testing.assert_allclose(found.scores[0], [1.0, half, 0], atol=1e-6)
    np.testing.assert_allclose(found.scores[2], [root, half, half], atol=1e-6)
    np.testing.assert_allclose(found.scores[3], [root, 0, 0], atol=1e-6)


def test_cooccurrence_neighbours_keep_the_best_max_neighbours() -> None:
    rows = Sequences.from_lists([0, 1, 2], [[0, 1, 2], [0, 1, 1], [2, 3]])
    found = AugmentContext(rows, n_items=4, max_neighbours=1).cooccurrence_neighbours()
    assert found.items[:, 0].tolist() == [1, 0, 3, 2]


def test_embeddings_must_have_one_row_per_item() -> None:
    with pytest.raises(ValueError, match="embeddings have 4 rows for 5 items"):
        AugmentContext(WARM_ROWS, n_items=5, embeddings=PLANE)


def test_training_items_must_be_in_the_catalog() -> None:
    with pytest.raises(ValueError, match="outside the catalog"):
        AugmentContext(WARM_ROWS, n_items=3)


@pytest.mark.parametrize(
    ("strategy", "name"),
    [
        (Substitute(correlation="text"), "substitute"),
        (Insert(correlation="text"), "insert"),
        (ColdNeighbours(), "cold-neighbours"),
    ],
)
def test_text_strategy_without_embeddings_names_the_strategy(strategy, name) -> None:
    context = AugmentContext(WARM_ROWS, n_items=4)
    with pytest.raises(ValueError, match=f"strategy '{name}' needs item text embeddings"):
        strategy.generate(context)


def test_cooccurrence_strategies_need_no_embeddings() -> None:
    rows = Sequences.from_lists([0, 1], [[0, 1, 2, 3], [1, 2, 3, 0]])
    context = AugmentContext(rows, n_items=4)
    assert len(Substitute(correlation="cooccurrence").generate(context)) == 2
    context.prepare()  # no embeddings: only the co-occurrence table
    with pytest.raises(ValueError, match="needs item text embeddings"):
        context.text_neighbours()
