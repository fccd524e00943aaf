"""Cold-start neighbours: give items with few or no events a place in real sequences.

A new item has no events, so an ID-based model never learns it. Its text does say which warm
items it resembles; where those twins occur in real rows, the new item could plausibly have
stood. Each sample is a real row with one occurrence of a warm neighbour replaced by the cold
item, scored by their text similarity, so the weakest guesses count least (in the manner of the
embedding-neighbour warm-up of cold items in the LLM-for-cold-start literature).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from shopaug.augment.base import Strategy
from shopaug.augment.context import AugmentContext
from shopaug.augment.samples import GeneratedSequences
from shopaug.data.sequences import Sequences


class ColdNeighbours(Strategy):
    """Real rows with a warm text-neighbour of a cold item swapped for the cold item."""

    name: ClassVar[str] = "cold-neighbours"
    needs_embeddings: ClassVar[bool] = True
    max_events: int = Field(2, ge=0, description="Items with at most this many events are cold.")
    neighbours: int = Field(5, ge=1, le=100, description="Warm neighbours used per cold item.")
    rows_per_neighbour: int = Field(3, ge=1, description="Real rows used per neighbour.")
    min_similarity: float = Field(0.5, ge=-1, le=1, description="Weaker neighbours are skipped.")

    def cold_items(self, context: AugmentContext) -> np.ndarray:
        return np.flatnonzero(context.item_counts <= self.max_events)

    def generate(self, context: AugmentContext) -> GeneratedSequences:
        rng, train = self.rng(), context.train
        cold = self.cold_items(context)
        context.require_embeddings(self.name)
        table = context.text_neighbours(warm_only=True)
        width = min(self.neighbours, table.items.shape[1])
        cold_of = np.repeat(cold, width)
        warm = table.items[cold, :width].ravel()
        similarity = table.scores[cold, :width].ravel()
        usable = (warm >= 0) & (similarity >= self.min_similarity)
        cold_of, warm, similarity = cold_of[usable], warm[usable], similarity[usable]

        # Each (cold, warm) pair takes up to rows_per_neighbour distinct occurrences of ``warm``,
        # starting at a random offset in the list of its occurrences.
        by_item = np.argsort(train.items, kind="stable")
        first = np.searchsorted(train.items[by_item], np.arange(context.n_items))
        n_occ = context.item_counts[warm]
        take = np.minimum(n_occ, self.rows_per_neighbour)
        pair = np.repeat(np.arange(len(warm)), take)
        step = np.arange(len(pair)) - np.repeat(np.cumsum(take) - take, take)
        start = (rng.random(len(warm)) * n_occ).astype(np.int64)
        event = by_item[first[warm[pair]] + (start[pair] + step) % n_occ[pair]]

        source_row = train.row_ids()[event]
        copies = train.select_rows(source_row)
        items = copies.items.copy()
        items[copies.indptr[:-1] + train.positions()[event]] = cold_of[pair]
        return GeneratedSequences.build(
            Sequences(copies.users, copies.indptr, items),
            self.name,
            self.describe(),
            source_row=source_row,
            source_item=warm[pair],
            score=np.clip(similarity[pair], 0.0, 1.0),
        )
