"""HardNegativeMiner: the nearest items by text that are neither taken by the user nor duplicates."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from shopaug.augment import HardNegativeMiner
from shopaug.augment.context import AugmentContext
from shopaug.data.sequences import Sequences

# Items on a circle: 1 is a near-duplicate of 0 (2 degrees, cosine 0.9994).
ANGLES = [0, 2, 20, 40, 65, 100]
ROWS = [[0, 3], [4, 5]]


def plane(angles) -> np.ndarray:
    rad = np.deg2rad(angles)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def context(rows=ROWS, vectors=None) -> AugmentContext:
    vectors = plane(ANGLES) if vectors is None else vectors
    return AugmentContext(Sequences.from_lists(list(range(len(rows))), rows), len(vectors), vectors)


def triples(found) -> list[tuple[int, int, int]]:
    return list(
        zip(found.row.tolist(), found.positive.tolist(), found.negative.tolist(), strict=True)
    )


def test_hand_checked_negatives() -> None:
    found = HardNegativeMiner(per_positive=2).mine(context())
    assert triples(found) == [
        (0, 0, 2),  # 1 is a duplicate of 0, 3 is in the row; then 2 (20 deg), 4 (65 deg)
        (0, 0, 4),
        (0, 3, 2),  # 2 (20 deg), 4 (25 deg); 0 is in the row
        (0, 3, 4),
        (1, 4, 3),  # 3 (25 deg), 2 (45 deg); 5 is in the row
        (1, 4, 2),
        (1, 5, 3),  # 3 (60 deg), 2 (80 deg); 4 is in the row
        (1, 5, 2),
    ]
    cos = np.cos(np.deg2rad([20, 65, 20, 25, 25, 45, 60, 80]))
    np.testing.assert_allclose(found.score, cos, atol=1e-5)
    assert found.generator.startswith("hard-negatives(") and "per_positive=2" in found.generator


def test_duplicate_threshold_decides_what_counts_as_the_same_item() -> None:
    found = HardNegativeMiner(per_positive=2, duplicate_threshold=1.0).mine(context())
    assert triples(found)[:2] == [(0, 0, 1), (0, 0, 2)]


def test_skip_top_skips_the_nearest_candidates() -> None:
    found = HardNegativeMiner(per_positive=2, skip_top=1).mine(context())
    # For positive 3 the nearest (item 2) is skipped: 4 (25 deg), then 1 (38 deg).
    assert [t for t in triples(found) if t[:2] == (0, 3)] == [(0, 3, 4), (0, 3, 1)]


def test_to_frame_has_provenance() -> None:
    frame = HardNegativeMiner(per_positive=1).mine(context()).to_frame()
    assert frame.columns.tolist() == ["row", "positive", "negative", "score", "origin", "generator"]
    assert len(frame) == 4 and set(frame["origin"]) == {"hard-negatives"}


@pytest.mark.parametrize(("per_positive", "threshold"), [(1, 0.95), (3, 0.9), (5, 0.8)])
def test_negatives_are_safe_bounded_and_ordered_on_random_data(per_positive, threshold) -> None:
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(40, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [rng.choice(40, size=rng.integers(2, 8), replace=False).tolist() for _ in range(25)]
    ctx = context(rows, vectors)
    found = HardNegativeMiner(per_positive=per_positive, duplicate_threshold=threshold).mine(ctx)
    assert len(found) > 0
    for row, positive, negative, score in zip(
        found.row, found.positive, found.negative, found.score, strict=True
    ):
        assert negative not in rows[row]
        assert positive in rows[row]
        assert score == pytest.approx(float(vectors[positive] @ vectors[negative]), abs=1e-5)
        assert score < threshold
    # Items are distinct within a row, so (row, positive) identifies the training event.
    events = list(zip(found.row.tolist(), found.positive.tolist(), strict=True))
    for event in set(events):
        scores = found.score[[e == event for e in events]]
        assert len(scores) <= per_positive
        assert (np.diff(scores) <= 1e-6).all()
        # They are the best safe candidates: nothing safe and closer was passed over.
        row, positive = event
        sims = vectors @ vectors[positive]
        safe = [
            j for j in range(40) if j != positive and j not in rows[row] and sims[j] < threshold
        ]
        best = sorted(safe, key=lambda j: -sims[j])[: len(scores)]
        np.testing.assert_allclose(scores, sims[best], atol=1e-5)


def test_the_miner_needs_embeddings_and_checks_its_parameters() -> None:
    no_text = AugmentContext(Sequences.from_lists([0], [[0, 1]]), n_items=2)
    with pytest.raises(ValueError, match="'hard-negatives' needs item text embeddings"):
        HardNegativeMiner().mine(no_text)
    with pytest.raises(ValidationError, match="per_positive"):
        HardNegativeMiner(per_positive=0)
    with pytest.raises(ValidationError, match="duplicate_threshold"):
        HardNegativeMiner(duplicate_threshold=1.5)
