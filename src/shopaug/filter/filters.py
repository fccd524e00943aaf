"""The filters: duplicates, plausibility, diversity, caps and the generated-to-real ratio.

Order matters and :data:`DEFAULT_FILTERS` gives a sensible one: remove copies first (they add
nothing), then implausible rows, then balance what is left, and cap the total last so that the cap
keeps the best of what survived.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from shopaug.augment.samples import GeneratedSequences
from shopaug.data.sequences import Sequences
from shopaug.filter.base import FilterContext, SampleFilter, best_first, keep_top_per_group

_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)


def row_hashes(seq: Sequences, ordered: bool = True) -> np.ndarray:
    """A 64-bit hash of every row's items (of its sorted items if not ``ordered``) and length."""
    if len(seq) == 0:
        return np.zeros(0, dtype=np.uint64)
    items = seq.items
    if not ordered:
        items = items[np.lexsort((items, seq.row_ids()))]
    pos = seq.positions()
    powers = np.cumprod(np.full(max(int(seq.lengths.max()), 1), _HASH_BASE, dtype=np.uint64))
    with np.errstate(over="ignore"):
        terms = (items.astype(np.uint64) + np.uint64(1)) * powers[pos]
        totals = np.zeros(len(seq), dtype=np.uint64)
        non_empty = seq.lengths > 0
        totals[non_empty] = np.add.reduceat(terms, seq.indptr[:-1][non_empty])
        return totals ^ (seq.lengths.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9))


class ExactDuplicates(SampleFilter):
    """Drops rows identical (same items, same order) to a real row or to a better-scored sample."""

    name: ClassVar[str] = "exact-duplicates"

    def keep(self, samples: GeneratedSequences, context: FilterContext) -> np.ndarray:
        return _first_of_each_hash(row_hashes(samples.sequences), row_hashes(context.real), samples)


class NearDuplicates(SampleFilter):
    """Drops rows holding the same items as another (better-scored) sample, in any order."""

    name: ClassVar[str] = "near-duplicates"

    def keep(self, samples: GeneratedSequences, context: FilterContext) -> np.ndarray:
        no_real = np.zeros(0, dtype=np.uint64)
        return _first_of_each_hash(row_hashes(samples.sequences, ordered=False), no_real, samples)


def _first_of_each_hash(
    hashes: np.ndarray, real_hashes: np.ndarray, samples: GeneratedSequences
) -> np.ndarray:
    order = best_first(samples)
    keep = keep_top_per_group(hashes, order, 1)
    return keep & ~np.isin(hashes, real_hashes)


class Consistency(SampleFilter):
    """Keeps the ``keep_share`` of each strategy's rows that a model of real data finds likeliest.

    The scorer (e.g. the mean log-probability of a row's transitions under a Markov chain fit on
    the real training rows) sees no validation or test data. Scores are ranked within each
    strategy, since strategies differ in how far they stray by design.
    """

    name: ClassVar[str] = "consistency"
    keep_share: float = Field(0.8, gt=0, le=1)

    def keep(self, samples: GeneratedSequences, context: FilterContext) -> np.ndarray:
        if context.scorer is None:
            raise ValueError("the consistency filter needs a scorer trained on real rows")
        plausibility = np.asarray(context.scorer(samples.sequences), dtype=np.float64)
        origin = samples.origin.astype(str)
        order = np.lexsort((np.arange(len(samples)), -plausibility))
        _, inverse, counts = np.unique(origin, return_inverse=True, return_counts=True)
        quota = np.ceil(self.keep_share * counts).astype(np.int64)[inverse]
        return keep_top_per_group(inverse, order, quota)


class Caps(SampleFilter):
    """At most ``per_user`` generated rows per user and ``per_item`` rows holding each item."""

    name: ClassVar[str] = "caps"
    per_user: int | None = Field(20, ge=1)
    per_item: int | None = Field(200, ge=1)

    def keep(self, samples: GeneratedSequences, context: FilterContext) -> np.ndarray:
        order = best_first(samples)
        keep = np.ones(len(samples), dtype=bool)
        if self.per_user is not None:
            _, users = np.unique(samples.sequences.users, return_inverse=True)
            keep &= keep_top_per_group(users, order, self.per_user)
        if self.per_item is not None:
            keep &= _item_cap(samples, order, self.per_item)
        return keep


def _item_cap(samples: GeneratedSequences, order: np.ndarray, cap: int) -> np.ndarray:
    """Rows whose every item is within its first ``cap`` appearances in score order."""
    seq = samples.sequences
    rank_of_row = np.empty(len(samples), dtype=np.int64)
    rank_of_row[order] = np.arange(len(samples))
    event_rank = rank_of_row[seq.row_ids()]
    event_order = np.lexsort((event_rank, seq.items))
    items_sorted = seq.items[event_order]
    starts = np.r_[0, np.flatnonzero(items_sorted[1:] != items_sorted[:-1]) + 1]
    nth = np.arange(len(items_sorted)) - np.repeat(
        starts, np.diff(np.r_[starts, len(items_sorted)])
    )
    over = np.zeros(seq.n_events, dtype=bool)
    over[event_order] = nth >= cap
    return np.bincount(seq.row_ids()[over], minlength=len(samples)) == 0


class Diversity(SampleFilter):
    """Keeps ``keep_share`` of the rows, preferring rows whose items are rare among the samples.

    A row's value is its score times the mean inverse log-frequency of its items in the generated
    set, so rows that spread the samples over more of the catalog win over the hundredth variation
    on a best-seller.
    """

    name: ClassVar[str] = "diversity"
    keep_share: float = Field(0.9, gt=0, le=1)

    def keep(self, samples: GeneratedSequences, context: FilterContext) -> np.ndarray:
        seq = samples.sequences
        frequency = np.bincount(seq.items, minlength=context.n_items)
        rarity = 1.0 / np.log2(1.0 + frequency[seq.items])
        row_rarity = np.bincount(seq.row_ids(), weights=rarity, minlength=len(samples))
        value = samples.score * row_rarity / np.maximum(seq.lengths, 1)
        n_keep = int(np.ceil(self.keep_share * len(samples)))
        order = np.lexsort((np.arange(len(samples)), -value))
        keep = np.zeros(len(samples), dtype=bool)
        keep[order[:n_keep]] = True
        return keep


class RatioCap(SampleFilter):
    """Generated events at most ``max_ratio`` times the real events.

    Every strategy is cut by the same share of its events, keeping its best-scored rows, so a
    strategy whose scores are on a different scale (crop is always 1) cannot crowd out another.
    """

    name: ClassVar[str] = "ratio-cap"
    max_ratio: float = Field(1.0, gt=0)

    def keep(self, samples: GeneratedSequences, context: FilterContext) -> np.ndarray:
        lengths = samples.sequences.lengths
        share = min(1.0, self.max_ratio * context.real.n_events / max(int(lengths.sum()), 1))
        _, origin = np.unique(samples.origin.astype(str), return_inverse=True)
        order = np.lexsort((np.arange(len(samples)), -samples.score, origin))
        ordered_origin = origin[order]
        cumulative = np.cumsum(lengths[order])
        first = np.r_[0, np.flatnonzero(ordered_origin[1:] != ordered_origin[:-1]) + 1]
        group_end = np.r_[first[1:], len(order)]
        before_group = np.repeat(np.r_[0, cumulative[group_end[:-1] - 1]], group_end - first)
        group_total = np.repeat(cumulative[group_end - 1], group_end - first) - before_group
        within = cumulative - before_group <= share * group_total
        keep = np.zeros(len(samples), dtype=bool)
        keep[order[within]] = True
        return keep


FILTERS: dict[str, type[SampleFilter]] = {
    cls.name: cls
    for cls in (ExactDuplicates, NearDuplicates, Consistency, Diversity, Caps, RatioCap)
}
#: The default chain, in the order it runs.
DEFAULT_FILTERS = ("exact-duplicates", "near-duplicates", "consistency", "caps", "ratio-cap")
