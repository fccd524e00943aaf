"""Filters over generated samples, each on a hand-made set of rows, and the chain that runs them."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from pydantic import ValidationError

from shopaug.augment.samples import GeneratedSequences, concat
from shopaug.data.sequences import Sequences
from shopaug.filter import (
    DEFAULT_FILTERS,
    FILTERS,
    Caps,
    Consistency,
    Diversity,
    ExactDuplicates,
    FilterContext,
    NearDuplicates,
    RatioCap,
    SampleFilter,
    apply_filters,
    make_filter,
    row_hashes,
)
from shopaug.filter.base import best_first, keep_top_per_group

N_ITEMS = 10


def gen(
    rows: list[list[int]],
    scores: list[float] | None = None,
    origins: list[str] | None = None,
    users: list[str] | None = None,
) -> GeneratedSequences:
    """Samples with the given items, scores, origins (default "crop") and users (default "u")."""
    n = len(rows)
    origins = origins or ["crop"] * n
    parts = [
        GeneratedSequences.build(
            Sequences.from_lists([(users or ["u"] * n)[i]], [rows[i]]),
            origins[i],
            f"{origins[i]}()",
            source_row=np.array([i]),
            score=np.array([1.0 if scores is None else scores[i]]),
        )
        for i in range(n)
    ]
    return concat(parts)


def ctx(real: list[list[int]] | None = None, scorer=None) -> FilterContext:
    real = [[0, 1, 2, 3, 4]] if real is None else real
    return FilterContext(Sequences.from_lists(list(range(len(real))), real), N_ITEMS, scorer)


def kept(sample_filter: SampleFilter, samples: GeneratedSequences, context=None) -> list[int]:
    mask = sample_filter.keep(samples, context or ctx())
    assert mask.dtype == bool and mask.shape == (len(samples),)
    return np.flatnonzero(mask).tolist()


# ---------------------------------------------------------------------------------------------
# Hashes and the shared helpers


def test_row_hashes_ordered_and_unordered() -> None:
    seq = Sequences.from_lists([0] * 5, [[1, 2, 3], [3, 2, 1], [1, 2, 3], [1, 2], [1, 2, 3, 0]])
    ordered = row_hashes(seq)
    assert ordered[0] == ordered[2]
    assert len({ordered[0], ordered[1], ordered[3], ordered[4]}) == 4
    unordered = row_hashes(seq, ordered=False)
    assert unordered[0] == unordered[1] == unordered[2]
    assert len({unordered[0], unordered[3], unordered[4]}) == 3
    assert ordered.dtype == np.uint64


def test_row_hashes_do_not_depend_on_the_other_rows() -> None:
    alone = row_hashes(Sequences.from_lists([0], [[7, 8]]))
    among = row_hashes(Sequences.from_lists([0, 1, 2], [[1, 2, 3, 4], [7, 8], [9]]))
    assert alone[0] == among[1]
    assert len(row_hashes(Sequences.from_lists([], []))) == 0


def test_best_first_and_keep_top_per_group() -> None:
    samples = gen([[1]] * 4, scores=[0.2, 0.9, 0.9, 0.5])
    order = best_first(samples)
    assert order.tolist() == [1, 2, 3, 0]  # ties by row index
    groups = np.array(["a", "b", "a", "a"])
    assert keep_top_per_group(groups, order, 1).tolist() == [False, True, True, False]
    assert keep_top_per_group(groups, order, 2).tolist() == [False, True, True, True]
    per_row = np.array([0, 1, 0, 0])  # group a keeps none, b keeps one
    assert keep_top_per_group(groups, order, per_row).tolist() == [False, True, False, False]


# ---------------------------------------------------------------------------------------------
# The filters


def test_exact_duplicates_of_real_rows_and_of_better_samples_go() -> None:
    samples = gen(
        [[0, 1, 2, 3, 4], [5, 6], [5, 6], [6, 5], [1, 2]],
        scores=[1.0, 0.5, 0.9, 0.1, 0.3],
    )
    # Row 0 copies a real row; row 1 copies row 2, which scores better; [6, 5] is another order.
    assert kept(ExactDuplicates(), samples) == [2, 3, 4]


def test_exact_duplicates_keep_the_first_of_equal_scores() -> None:
    assert kept(ExactDuplicates(), gen([[5, 6], [5, 6], [5, 6]])) == [0]


def test_near_duplicates_compare_item_sets_among_samples_only() -> None:
    samples = gen([[5, 6], [6, 5], [4, 3, 2, 1, 0], [5, 6, 6]], scores=[0.5, 0.9, 1.0, 0.2])
    # [6, 5] beats [5, 6]; [4, 3, 2, 1, 0] holds a real row's items but is not a sample's copy;
    # [5, 6, 6] has another multiset.
    assert kept(NearDuplicates(), samples) == [1, 2, 3]


def first_item_scorer(seq: Sequences) -> np.ndarray:
    """A fake plausibility: the row's first item."""
    return seq.items[seq.indptr[:-1]].astype(float)


def test_consistency_keeps_the_likeliest_share_of_each_origin() -> None:
    samples = gen(
        [[3], [9], [1], [7], [2], [8]],
        origins=["crop", "crop", "crop", "crop", "mask", "mask"],
    )
    context = ctx(scorer=first_item_scorer)
    # crop: 4 rows, keep 2 (items 9 and 7); mask: 2 rows, keep ceil(1) = 1 (item 8).
    assert kept(Consistency(keep_share=0.5), samples, context) == [1, 3, 5]
    # ceil(0.3 * 4) = 2 and ceil(0.3 * 2) = 1
    assert kept(Consistency(keep_share=0.3), samples, context) == [1, 3, 5]
    assert kept(Consistency(keep_share=1.0), samples, context) == list(range(6))


def test_consistency_needs_a_scorer() -> None:
    with pytest.raises(ValueError, match="needs a scorer"):
        Consistency().keep(gen([[1, 2]]), ctx())


def test_caps_per_user_keep_the_best_rows_of_each_user() -> None:
    samples = gen([[1], [2], [3], [4]], scores=[0.1, 0.9, 0.5, 0.3], users=["u", "u", "u", "v"])
    assert kept(Caps(per_user=2, per_item=None), samples) == [1, 2, 3]
    assert kept(Caps(per_user=1, per_item=None), samples) == [1, 3]


def test_caps_per_item_keep_rows_whose_items_are_within_their_first_appearances() -> None:
    samples = gen(
        [[1, 2], [2, 3], [4], [4], [4]], scores=[0.9, 0.5, 0.1, 0.8, 0.4], users=list("abcde")
    )
    # Item 2 first appears in row 0 (0.9), so row 1 holds its second appearance; item 4 is in
    # rows 3 (0.8), 4 (0.4), 2 (0.1): two fit.
    assert kept(Caps(per_user=None, per_item=1), samples) == [0, 3]
    assert kept(Caps(per_user=None, per_item=2), samples) == [0, 1, 3, 4]
    assert kept(Caps(per_user=None, per_item=None), samples) == [0, 1, 2, 3, 4]


def test_diversity_prefers_rows_of_items_rare_among_the_samples() -> None:
    rows = [[1, 2], [1, 2], [1, 3], [4, 5]]
    # Item frequencies: 1: 3, 2: 2, 3, 4, 5: 1; rarity 1 / log2(1 + f): 0.5, 0.63, 1.
    # Row values: 0.565, 0.565, 0.75, 1.
    assert kept(Diversity(keep_share=0.5), gen(rows)) == [2, 3]
    # With a score of 0.5 the last row is worth 0.5, below row 0 (first of the 0.565 pair).
    assert kept(Diversity(keep_share=0.5), gen(rows, scores=[1, 1, 1, 0.5])) == [0, 2]
    assert kept(Diversity(keep_share=0.6), gen(rows)) == [0, 2, 3]  # ceil(2.4) = 3


def test_ratio_cap_cuts_every_origin_by_the_same_share() -> None:
    rows = [[1, 2]] * 4 + [[1, 2, 3, 4, 5, 6]] * 2
    samples = gen(
        rows,
        scores=[0.6, 0.9, 0.7, 0.8, 1.0, 1.0],
        origins=["crop"] * 4 + ["insert"] * 2,
    )
    real = ctx([[0, 1, 2, 3, 4]] * 2)  # 10 real events; 20 generated
    keep = kept(RatioCap(max_ratio=1.0), samples, real)
    # share 0.5: crop keeps its best 4 of 8 events (rows 1, 3); insert 6 of 12 (row 4).
    assert keep == [1, 3, 4]
    assert samples.select(np.array(keep)).n_events <= 10


@pytest.mark.parametrize("max_ratio", [0.2, 0.5, 0.8])
def test_ratio_cap_bounds_generated_events_per_origin(max_ratio) -> None:
    rng = np.random.default_rng(1)
    rows = [rng.integers(0, N_ITEMS, size=rng.integers(1, 5)).tolist() for _ in range(60)]
    origins = rng.choice(["crop", "mask", "substitute"], size=60).tolist()
    samples = gen(rows, scores=rng.random(60).tolist(), origins=origins)
    real = ctx([[1, 2, 3, 4, 5]] * 10)
    share = max_ratio * 50 / samples.n_events
    out = samples.select(RatioCap(max_ratio=max_ratio).keep(samples, real))
    assert out.n_events <= max_ratio * 50
    for origin in set(origins):
        total = samples.select(samples.origin == origin).n_events
        left = out.select(out.origin == origin)
        assert left.n_events <= share * total
        assert left.n_events > share * total - 4  # within one row of the quota
        dropped = samples.select((samples.origin == origin) & ~np.isin(samples.score, left.score))
        if len(left) and len(dropped):
            assert left.score.min() >= dropped.score.max()  # the best rows stay


def test_ratio_cap_keeps_everything_under_the_cap() -> None:
    samples = gen([[1, 2], [3]])
    assert kept(RatioCap(max_ratio=1.0), samples) == [0, 1]


# ---------------------------------------------------------------------------------------------
# The chain and the registry


def test_apply_filters_runs_in_order_and_reports_by_origin() -> None:
    samples = gen(
        [[0, 1, 2, 3, 4], [5, 6], [5, 6], [7, 8], [8, 7], [9]],
        scores=[1.0, 0.5, 0.9, 0.8, 0.7, 0.6],
        origins=["crop", "substitute", "crop", "insert", "insert", "crop"],
    )
    out, reports = apply_filters(samples, [ExactDuplicates(), NearDuplicates()], ctx())
    assert out.sequences.to_lists() == [[5, 6], [7, 8], [9]]
    assert [(r.name, r.before, r.removed) for r in reports] == [
        ("exact-duplicates", 6, 2),
        ("near-duplicates", 4, 1),
    ]
    assert reports[0].removed_by_origin == {"crop": 1, "substitute": 1}
    assert reports[1].removed_by_origin == {"insert": 1}
    assert out.counts_by_origin() == {"crop": 2, "insert": 1}


def test_apply_filters_rejects_a_mask_of_the_wrong_shape() -> None:
    class Broken(SampleFilter):
        name: ClassVar[str] = "broken"

        def keep(self, samples, context):
            return np.ones(len(samples) + 1, dtype=bool)

    with pytest.raises(ValueError, match="filter 'broken' returned a mask of shape"):
        apply_filters(gen([[1]]), [Broken()], ctx())


def test_no_filters_keep_everything() -> None:
    samples = gen([[1], [1]])
    out, reports = apply_filters(samples, [], ctx())
    assert len(out) == 2 and reports == []


def test_registry_and_make_filter() -> None:
    assert set(DEFAULT_FILTERS) <= set(FILTERS)
    for name, cls in FILTERS.items():
        assert cls.name == name
    assert make_filter("caps", per_user=3) == Caps(per_user=3)
    assert "per_user=3" in make_filter("caps", per_user=3).describe()
    with pytest.raises(ValueError, match=r"unknown filter 'dedupe'; known filters: .*caps"):
        make_filter("dedupe")
    with pytest.raises(ValidationError, match="keep_share"):
        make_filter("consistency", keep_share=0)
    with pytest.raises(ValidationError, match="max_raito"):
        make_filter("ratio-cap", max_raito=2)
