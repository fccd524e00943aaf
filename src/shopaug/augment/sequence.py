"""Sequence strategies: new rows from real ones, as in CL4SRec (crop, mask, reorder) and CoSeRec
(substitute and insert with correlated items).

CL4SRec (Xie et al., 2022) uses crop / mask / reorder as views for a contrastive loss; here the
same operators make extra *training rows* for next-item models, which is how they help sparse
data. "Mask" deletes the masked events, since the models have no mask token in their vocabulary.
CoSeRec (Liu et al., 2021) replaces or inserts items with *correlated* ones, which keeps the
sample plausible; the correlation is training co-occurrence or text similarity (the large-model
feature). Every operator is vectorised over all rows at once.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from shopaug.augment.base import (
    Strategy,
    eligible_rows,
    mean_per_row,
    pick_per_row,
    random_neighbour,
    windows,
)
from shopaug.augment.context import AugmentContext, Neighbours
from shopaug.augment.samples import GeneratedSequences
from shopaug.data.sequences import Sequences

Correlation = Literal["cooccurrence", "text"]


class RowStrategy(Strategy):
    """Shared parameters: which rows are augmented and how many samples each gives."""

    ratio: float = Field(0.6, gt=0, le=1, description="Share of the row the operator touches.")
    copies: int = Field(1, ge=1, le=100, description="Samples per eligible real row.")
    min_length: int = Field(3, ge=2, description="Shorter rows are not augmented.")

    def _rows(self, context: AugmentContext) -> np.ndarray:
        return eligible_rows(context.train, self.min_length, self.copies)

    def _pieces(
        self, lengths: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Start and length of a random contiguous piece of ``ratio`` of each row (at least 2)."""
        piece = np.clip(np.floor(self.ratio * lengths).astype(np.int64), 2, lengths)
        starts = (rng.random(len(lengths)) * (lengths - piece + 1)).astype(np.int64)
        return starts, piece

    def _build(
        self, sequences: Sequences, rows: np.ndarray, score: np.ndarray | None = None, **kw
    ) -> GeneratedSequences:
        return GeneratedSequences.build(
            sequences, self.name, self.describe(), source_row=rows, score=score, **kw
        )


class Crop(RowStrategy):
    """A random contiguous piece of ``ratio`` of the row (at least 2 items)."""

    name: ClassVar[str] = "crop"

    def generate(self, context: AugmentContext) -> GeneratedSequences:
        rng, train = self.rng(), context.train
        rows = self._rows(context)
        starts, piece = self._pieces(train.lengths[rows], rng)
        return self._build(windows(train, rows, starts, piece), rows)


class Mask(RowStrategy):
    """The row with ``ratio`` of its events deleted (at least one, and 2 items kept)."""

    name: ClassVar[str] = "mask"
    ratio: float = Field(0.3, gt=0, lt=1)

    def generate(self, context: AugmentContext) -> GeneratedSequences:
        rng = self.rng()
        rows = self._rows(context)
        copies = context.train.select_rows(rows)
        n_drop = np.clip(np.round(self.ratio * copies.lengths), 1, copies.lengths - 2)
        dropped = pick_per_row(copies, n_drop.astype(np.int64), rng)
        return self._build(copies.select_events(~dropped), rows)


class Reorder(RowStrategy):
    """The row with a random contiguous piece of ``ratio`` of it shuffled."""

    name: ClassVar[str] = "reorder"
    ratio: float = Field(0.3, gt=0, le=1)

    def generate(self, context: AugmentContext) -> GeneratedSequences:
        rng = self.rng()
        rows = self._rows(context)
        copies = context.train.select_rows(rows)
        starts, piece = self._pieces(copies.lengths, rng)
        pos = copies.positions().astype(np.float64)
        row = copies.row_ids()
        inside = (pos >= starts[row]) & (pos < starts[row] + piece[row])
        # Positions outside the piece stay integers; inside they become random reals within
        # [start - 0.5, start + piece - 0.5), so sorting shuffles the piece and nothing else.
        key = np.where(inside, starts[row] - 0.5 + rng.random(len(pos)) * piece[row], pos)
        order = np.lexsort((key, row))
        shuffled = Sequences(copies.users, copies.indptr, copies.items[order])
        return self._build(shuffled, rows)


class CorrelatedStrategy(RowStrategy):
    """Operators that bring in items correlated with the ones in the row."""

    ratio: float = Field(0.2, gt=0, le=1)
    correlation: Correlation = Field(
        "text", description="Neighbours by training co-occurrence or by item-text similarity."
    )
    top: int = Field(5, ge=1, le=100, description="Draw among this many nearest neighbours.")

    def _neighbours(self, context: AugmentContext) -> Neighbours:
        if self.correlation == "text":
            context.require_embeddings(self.name)
            return context.text_neighbours()
        return context.cooccurrence_neighbours()

    def _chosen(
        self, context: AugmentContext
    ) -> tuple[Sequences, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the eligible rows, the chosen events, and a neighbour for each of them."""
        rng = self.rng()
        rows = self._rows(context)
        copies = context.train.select_rows(rows)
        n_pick = np.maximum(1, np.round(self.ratio * copies.lengths)).astype(np.int64)
        chosen = np.flatnonzero(pick_per_row(copies, n_pick, rng))
        table = self._neighbours(context)
        other, score = random_neighbour(
            table.items, table.scores, copies.items[chosen], self.top, rng
        )
        found = other >= 0
        return copies, rows, chosen[found], other[found], score[found]


class Substitute(CorrelatedStrategy):
    """The row with ``ratio`` of its items replaced by one of their nearest neighbours.

    The sample's score is the mean similarity of the substitutions: a swap for a near twin is a
    safer guess than a swap for a loose relative.
    """

    name: ClassVar[str] = "substitute"

    def generate(self, context: AugmentContext) -> GeneratedSequences:
        copies, rows, chosen, other, score = self._chosen(context)
        items = copies.items.copy()
        items[chosen] = other
        changed = np.bincount(copies.row_ids()[chosen], minlength=len(rows)) > 0
        result = Sequences(copies.users, copies.indptr, items)
        row_score = mean_per_row(score, copies.row_ids()[chosen], len(rows))
        keep = np.flatnonzero(changed)
        return self._build(result.select_rows(keep), rows[keep], row_score[keep])


class Insert(CorrelatedStrategy):
    """The row with a neighbour inserted right after ``ratio`` of its items."""

    name: ClassVar[str] = "insert"

    def generate(self, context: AugmentContext) -> GeneratedSequences:
        copies, rows, chosen, other, score = self._chosen(context)
        row = copies.row_ids()
        all_rows = np.concatenate([row, row[chosen]])
        key = np.concatenate([2 * copies.positions(), 2 * copies.positions()[chosen] + 1])
        items = np.concatenate([copies.items, other])
        order = np.lexsort((key, all_rows))
        counts = np.bincount(all_rows, minlength=len(rows))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        result = Sequences(copies.users, indptr, items[order])
        changed = counts > copies.lengths
        row_score = mean_per_row(score, row[chosen], len(rows))
        keep = np.flatnonzero(changed)
        return self._build(result.select_rows(keep), rows[keep], row_score[keep])
