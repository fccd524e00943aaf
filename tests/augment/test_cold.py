"""ColdNeighbours: a cold item stands where one of its warm text twins stood in a real row."""

from __future__ import annotations

import numpy as np
import pytest

from shopaug.augment import ColdNeighbours
from shopaug.augment.context import AugmentContext
from shopaug.data.sequences import Sequences


def embeddings() -> np.ndarray:
    """Items 0, 1, 2 and the cold item 6 lie in one plane at 0, 40, 80 and 10 degrees; items 3,
    4, 5 and the cold item 7 each have an axis of their own (similarity 0 to everything)."""
    vectors = np.zeros((8, 6), dtype=np.float32)
    for item, degrees in [(0, 0), (1, 40), (2, 80), (6, 10)]:
        vectors[item, :2] = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    for item, axis in [(3, 2), (4, 3), (5, 4), (7, 5)]:
        vectors[item, axis] = 1.0
    return vectors


def cos(degrees: float) -> float:
    return float(np.cos(np.deg2rad(degrees)))


ROWS = [[3, 0, 4], [0, 1, 3], [2, 4, 5], [1, 5, 0, 3], [4, 5]]
# Events: 0: 3, 1: 2, 2: 1, 3: 3, 4: 3, 5: 3, 6: 0, 7: 0.


@pytest.fixture
def context() -> AugmentContext:
    train = Sequences.from_lists(["a", "b", "c", "d", "e"], ROWS)
    return AugmentContext(train, n_items=8, embeddings=embeddings())


def as_set(out) -> set[tuple]:
    return {
        (int(row), tuple(items), int(item), round(float(score), 4))
        for row, items, item, score in zip(
            out.source_row, out.sequences.to_lists(), out.source_item, out.score, strict=True
        )
    }


def test_cold_item_takes_every_place_of_its_warm_neighbours(context) -> None:
    strategy = ColdNeighbours(max_events=0, neighbours=2, min_similarity=0.5, rows_per_neighbour=10)
    assert strategy.cold_items(context).tolist() == [6, 7]
    out = strategy.generate(context)
    c10, c30 = round(cos(10), 4), round(cos(30), 4)
    assert as_set(out) == {
        (0, (3, 6, 4), 0, c10),
        (1, (6, 1, 3), 0, c10),
        (3, (1, 5, 6, 3), 0, c10),
        (1, (0, 6, 3), 1, c30),
        (3, (6, 5, 0, 3), 1, c30),
    }
    # Item 7 resembles nothing: it gets no sample.
    assert 7 not in out.sequences.items
    assert (out.sequences.users == context.train.users[out.source_row]).all()
    assert set(out.origin.tolist()) == {"cold-neighbours"}


def test_each_sample_is_its_source_row_with_one_neighbour_swapped(context) -> None:
    strategy = ColdNeighbours(max_events=1, neighbours=5, min_similarity=0.1, rows_per_neighbour=2)
    out = strategy.generate(context)
    cold = set(strategy.cold_items(context).tolist())
    assert cold == {2, 6, 7}
    vectors = embeddings()
    assert len(out) > 0
    for row, sample, warm, score in zip(
        out.source_row, out.sequences.to_lists(), out.source_item, out.score, strict=True
    ):
        source = ROWS[row]
        changed = [i for i, (a, b) in enumerate(zip(source, sample, strict=True)) if a != b]
        assert len(changed) == 1
        (i,) = changed
        assert source[i] == warm and sample[i] in cold
        assert context.item_counts[warm] > 0
        assert score == pytest.approx(float(vectors[sample[i]] @ vectors[warm]), abs=1e-5)
        assert score >= 0.1


def test_min_similarity_drops_weak_neighbours(context) -> None:
    loose = ColdNeighbours(max_events=0, neighbours=3, min_similarity=0.3, rows_per_neighbour=10)
    strict = loose.model_copy(update={"min_similarity": 0.9})
    # At 0.3 item 2 (70 degrees from item 6, cosine 0.34) is a neighbour too.
    assert sorted(set(loose.generate(context).source_item.tolist())) == [0, 1, 2]
    out = strict.generate(context)
    assert set(out.source_item.tolist()) == {0} and len(out) == 3
    assert (out.score >= 0.9).all()


def test_neighbours_limits_the_warm_items_used(context) -> None:
    out = ColdNeighbours(max_events=0, neighbours=1, min_similarity=0.1).generate(context)
    assert set(out.source_item.tolist()) == {0}


@pytest.mark.parametrize("per", [1, 2])
def test_rows_per_neighbour_caps_the_samples_of_each_pair(context, per) -> None:
    strategy = ColdNeighbours(
        max_events=0, neighbours=2, min_similarity=0.5, rows_per_neighbour=per
    )
    out = strategy.generate(context)
    items, counts = np.unique(out.source_item, return_counts=True)
    assert items.tolist() == [0, 1] and counts.tolist() == [per, per]
    # Distinct occurrences: no (neighbour, source row) pair repeats here.
    assert len({(w, r) for w, r in zip(out.source_item, out.source_row, strict=True)}) == len(out)


def test_occurrences_are_drawn_by_seed(context) -> None:
    def rows(seed: int) -> list[list[int]]:
        strategy = ColdNeighbours(
            max_events=0, neighbours=2, min_similarity=0.5, rows_per_neighbour=1, seed=seed
        )
        return strategy.generate(context).sequences.to_lists()

    assert rows(3) == rows(3)
    assert len({tuple(map(tuple, rows(seed))) for seed in range(6)}) > 1


def test_no_cold_items_no_samples(context) -> None:
    warm_only = AugmentContext(context.train, n_items=6, embeddings=embeddings()[:6])
    assert len(ColdNeighbours(max_events=0).generate(warm_only)) == 0
