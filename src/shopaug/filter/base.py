"""The filter interface: each filter says which generated rows to keep, and is counted.

Filters are pydantic models (their parameters are data, as in a config file) with one method,
``keep``, returning a boolean mask over the generated rows. :func:`apply_filters` runs them in
order, each on what the previous ones left, and reports how many rows each removed, per strategy,
so a user sees which filter ate which strategy's samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from shopaug.augment.samples import GeneratedSequences
from shopaug.data.sequences import Sequences, rank_within_runs

#: Scores generated rows (higher = more plausible); e.g. a model trained on the real rows only.
SampleScorer = Callable[[Sequences], np.ndarray]


@dataclass
class FilterContext:
    """What filters may consult: the real training rows, the catalog size, a plausibility scorer."""

    real: Sequences
    n_items: int
    scorer: SampleScorer | None = None


class SampleFilter(BaseModel):
    """Base class: ``keep`` returns a boolean mask over ``samples``' rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = "filter"

    def keep(self, samples: GeneratedSequences, context: FilterContext) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.model_dump().items())
        return f"{self.name}({params})"


@dataclass(frozen=True)
class FilterReport:
    """Rows before a filter, rows it removed, and the removals by strategy."""

    name: str
    before: int
    removed: int
    removed_by_origin: dict[str, int] = field(default_factory=dict)


def apply_filters(
    samples: GeneratedSequences, filters: Sequence[SampleFilter], context: FilterContext
) -> tuple[GeneratedSequences, list[FilterReport]]:
    """Run ``filters`` in order; returns the kept rows and one report per filter."""
    reports = []
    for sample_filter in filters:
        mask = np.asarray(sample_filter.keep(samples, context), dtype=bool)
        if mask.shape != (len(samples),):
            raise ValueError(f"filter {sample_filter.name!r} returned a mask of shape {mask.shape}")
        names, counts = np.unique(samples.origin[~mask].astype(str), return_counts=True)
        reports.append(
            FilterReport(
                sample_filter.name,
                len(samples),
                int((~mask).sum()),
                dict(zip(names.tolist(), counts.tolist(), strict=True)),
            )
        )
        samples = samples.select(mask)
    return samples, reports


def best_first(samples: GeneratedSequences) -> np.ndarray:
    """Row order by descending score, ties by row index (deterministic)."""
    return np.lexsort((np.arange(len(samples)), -samples.score))


def keep_top_per_group(
    groups: np.ndarray, order: np.ndarray, limit: np.ndarray | int
) -> np.ndarray:
    """Mask keeping, within each group, the first ``limit`` rows of ``order``.

    ``limit`` is one number for all groups or one per row (the limit of the row's group).
    """
    ordered = groups[order]
    sort = np.argsort(ordered, kind="stable")
    sorted_groups = ordered[sort]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order[sort]] = rank_within_runs(sorted_groups)
    return rank < np.asarray(limit)
