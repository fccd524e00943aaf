"""Stage 5: filters over generated samples: duplicates, plausibility, diversity, caps, ratio.

Filters import the augmentation stage's sample records, never the models: the consistency filter
receives its scorer (a model trained on real rows) from the caller, as :data:`SampleScorer`.
"""

from __future__ import annotations

from typing import Any

from shopaug.filter.base import (
    FilterContext,
    FilterReport,
    SampleFilter,
    SampleScorer,
    apply_filters,
)
from shopaug.filter.filters import (
    DEFAULT_FILTERS,
    FILTERS,
    Caps,
    Consistency,
    Diversity,
    ExactDuplicates,
    NearDuplicates,
    RatioCap,
    row_hashes,
)
from shopaug.registry import build


def make_filter(name: str, **params: Any) -> SampleFilter:
    """A filter by registered name; unknown names and bad parameters fail with their name."""
    return build(FILTERS, "filters", name, **params)


__all__ = [
    "DEFAULT_FILTERS",
    "FILTERS",
    "Caps",
    "Consistency",
    "Diversity",
    "ExactDuplicates",
    "FilterContext",
    "FilterReport",
    "NearDuplicates",
    "RatioCap",
    "SampleFilter",
    "SampleScorer",
    "apply_filters",
    "make_filter",
    "row_hashes",
]
