"""Crop, mask, reorder, substitute, insert: every sample is its source row, changed as promised."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from pydantic import ValidationError

from shopaug.augment import STRATEGIES, Crop, Insert, Mask, Reorder, Substitute, make_strategy
from shopaug.augment.context import AugmentContext
from shopaug.augment.samples import GeneratedSequences
from shopaug.data.sequences import Sequences

N_CLUSTERS = 10
N_ITEMS = 4 * N_CLUSTERS


def cluster_embeddings() -> np.ndarray:
    """Item 4c + j (j = 0..3) points along axis c, with a little noise: the three text
    neighbours of item 4c are 4c+1, 4c+2 and 4c+3 (similarity ~0.99), every other item is
    nearly orthogonal."""
    rng = np.random.default_rng(7)
    vectors = np.repeat(np.eye(N_CLUSTERS), 4, axis=0) + 0.05 * rng.normal(
        size=(N_ITEMS, N_CLUSTERS)
    )
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


# Rows hold only items 4c ("heads"), all distinct within a row, so a text neighbour
# (4c+1..4c+3) is never already in the row. Rows 0 and 5 are shorter than min_length=3.
ROWS = [
    [0, 4],
    [8, 12, 16],
    [0, 4, 8, 12, 16],
    [20, 24, 28, 32, 36, 0, 4, 8],
    [36, 32, 28, 24, 20, 16, 12, 8, 4, 0],
    [12],
    [16, 20, 24, 28],
]
USERS = ["u0", "u1", "u2", "u3", "u4", "u5", "u6"]


@pytest.fixture
def context() -> AugmentContext:
    train = Sequences.from_lists(USERS, ROWS)
    return AugmentContext(train, N_ITEMS, cluster_embeddings(), max_neighbours=10)


def pairs(samples: GeneratedSequences, context: AugmentContext):
    """(source row, sample row) as lists, checking the user is the source row's user."""
    assert (samples.sequences.users == context.train.users[samples.source_row]).all()
    for sample, row in zip(samples.sequences.to_lists(), samples.source_row, strict=True):
        yield ROWS[row], sample


def is_subsequence(small: list[int], big: list[int]) -> bool:
    it = iter(big)
    return all(x in it for x in small)


def eligible(min_length: int = 3) -> list[int]:
    return [r for r, row in enumerate(ROWS) if len(row) >= min_length]


def test_crop_is_a_contiguous_piece_of_ratio_of_the_source(context) -> None:
    out = Crop(ratio=0.5, copies=2).generate(context)
    assert sorted(out.source_row.tolist()) == sorted(eligible() * 2)
    for source, sample in pairs(out, context):
        assert len(sample) == max(2, len(source) // 2)
        starts = [s for s in range(len(source)) if source[s : s + len(sample)] == sample]
        assert starts, (source, sample)


def test_mask_removes_ratio_of_the_events_keeping_order(context) -> None:
    out = Mask(ratio=0.3).generate(context)
    assert sorted(out.source_row.tolist()) == eligible()
    removed = {3: 1, 5: 2, 8: 2, 10: 3, 4: 1}  # round(0.3 * length), at least 1
    for source, sample in pairs(out, context):
        assert len(source) - len(sample) == removed[len(source)]
        assert is_subsequence(sample, source)


def test_mask_keeps_two_items(context) -> None:
    out = Mask(ratio=0.9).generate(context)
    assert all(len(sample) == 2 for _, sample in pairs(out, context))


def test_reorder_shuffles_one_contiguous_piece_only(context) -> None:
    ratio = 0.5
    out = Reorder(ratio=ratio, copies=3).generate(context)
    assert len(out) == 3 * len(eligible())
    moved = 0
    for source, sample in pairs(out, context):
        assert Counter(sample) == Counter(source)
        piece = max(2, int(np.floor(ratio * len(source))))
        changed = [i for i, (a, b) in enumerate(zip(source, sample, strict=True)) if a != b]
        if changed:
            moved += 1
            assert changed[-1] - changed[0] < piece
            span = slice(changed[0], changed[-1] + 1)
            assert Counter(source[span]) == Counter(sample[span])
    assert moved > 0


def neighbour_sets(context: AugmentContext, correlation: str, top: int) -> list[set[int]]:
    table = (
        context.text_neighbours() if correlation == "text" else context.cooccurrence_neighbours()
    )
    return [set(row[:top].tolist()) - {-1} for row in table.items]


@pytest.mark.parametrize("correlation", ["text", "cooccurrence"])
def test_substitute_replaces_items_with_their_neighbours(context, correlation) -> None:
    ratio, top = 0.3, 3
    out = Substitute(ratio=ratio, top=top, correlation=correlation).generate(context)
    near = neighbour_sets(context, correlation, top)
    assert set(out.source_row.tolist()) <= set(eligible()) and len(out) > 0
    for source, sample in pairs(out, context):
        assert len(sample) == len(source)
        changed = [i for i, (a, b) in enumerate(zip(source, sample, strict=True)) if a != b]
        assert 1 <= len(changed) <= max(1, round(ratio * len(source)))
        for i in changed:
            assert sample[i] in near[source[i]]


def test_substitute_by_text_gives_the_twin_and_its_similarity_as_score(context) -> None:
    out = Substitute(ratio=1.0, top=1, correlation="text").generate(context)
    table = context.text_neighbours()
    for (source, sample), score in zip(pairs(out, context), out.score, strict=True):
        assert sample == table.items[source, 0].tolist()  # every item swapped for its nearest
        assert all(x // 4 == y // 4 for x, y in zip(source, sample, strict=True))
        assert score == pytest.approx(table.scores[source, 0].mean(), rel=1e-5)
    assert (out.score > 0.9).all()


@pytest.mark.parametrize("ratio", [0.2, 0.5])
def test_insert_adds_a_neighbour_right_after_chosen_items(context, ratio) -> None:
    out = Insert(ratio=ratio, top=3, correlation="text").generate(context)
    near = neighbour_sets(context, "text", 3)
    assert len(out) == len(eligible())
    for source, sample in pairs(out, context):
        # Rows hold heads (multiples of 4) only; inserted neighbours are not heads.
        assert [x for x in sample if x % 4 == 0] == source
        inserted = [i for i, x in enumerate(sample) if x % 4 != 0]
        assert 1 <= len(inserted) <= max(1, round(ratio * len(source)))
        for i in inserted:
            assert sample[i] in near[sample[i - 1]]


def test_insert_by_cooccurrence_keeps_the_source_as_a_subsequence(context) -> None:
    out = Insert(ratio=0.5, top=2, correlation="cooccurrence").generate(context)
    near = neighbour_sets(context, "cooccurrence", 2)
    assert len(out) > 0
    for source, sample in pairs(out, context):
        assert is_subsequence(source, sample) and len(sample) > len(source)
        extra = Counter(sample) - Counter(source)
        assert all(any(x in near[s] for s in source) for x in extra)


ALL = [Crop, Mask, Reorder, Substitute, Insert]


@pytest.mark.parametrize("cls", ALL)
def test_rows_shorter_than_min_length_are_left_alone(context, cls) -> None:
    before = context.train.to_lists()
    out = cls(min_length=5).generate(context)
    assert set(out.source_row.tolist()) <= set(eligible(5))
    assert context.train.to_lists() == before  # the real rows are not modified in place


@pytest.mark.parametrize("cls", ALL)
def test_same_seed_same_samples_other_seed_other_samples(context, cls) -> None:
    first = cls(seed=1, copies=3).generate(context).to_frame()
    again = cls(seed=1, copies=3).generate(context).to_frame()
    other = cls(seed=2, copies=3).generate(context).to_frame()
    assert first.equals(again)
    assert first["items"].tolist() != other["items"].tolist()


@pytest.mark.parametrize("cls", ALL)
def test_provenance_columns_are_filled(context, cls) -> None:
    strategy = cls(ratio=0.5, copies=2)
    out = strategy.generate(context)
    assert len(out) > 0
    assert set(out.origin.tolist()) == {cls.name}
    generator = out.generator[0]
    assert generator == strategy.describe()
    assert generator.startswith(f"{cls.name}(") and "ratio=0.5" in generator
    assert "copies=2" in generator and "seed=0" in generator
    assert ((out.score >= 0) & (out.score <= 1)).all()
    assert ((out.source_row >= 0) & (out.source_row < len(ROWS))).all()


def test_registry_names_match_the_classes() -> None:
    assert {"crop", "mask", "reorder", "substitute", "insert"} <= set(STRATEGIES)
    for name, cls in STRATEGIES.items():
        assert cls.name == name
    assert make_strategy("crop", ratio=0.4) == Crop(ratio=0.4)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("crop", {"ratio": 1.5}, "ratio"),
        ("crop", {"copies": 0}, "copies"),
        ("mask", {"ratio": 1.0}, "ratio"),
        ("reorder", {"min_length": 1}, "min_length"),
        ("substitute", {"correlation": "colour"}, "correlation"),
        ("insert", {"top": 0}, "top"),
        ("crop", {"ratoi": 0.5}, "ratoi"),
    ],
)
def test_bad_parameters_fail_with_their_name(name, params, field) -> None:
    with pytest.raises(ValidationError) as info:
        make_strategy(name, **params)
    assert [e["loc"][0] for e in info.value.errors()] == [field]
    assert field in str(info.value)


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown strategy 'shuffle'.*crop"):
        make_strategy("shuffle")
