"""The strategy interface: parameters as a validated pydantic model, one ``generate`` method.

A strategy reads an :class:`~shopaug.augment.context.AugmentContext` (training rows and item
text only) and returns :class:`~shopaug.augment.samples.GeneratedSequences`. Parameters live on
the model, so a configuration file, the CLI and a benchmark's result JSON all describe a strategy
the same way (``strategy.model_dump()``), and a bad value fails with the parameter's name.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopaug.augment.context import AugmentContext
from shopaug.augment.samples import GeneratedSequences
from shopaug.data.sequences import Sequences


class Strategy(BaseModel):
    """Base class of all sample-generating strategies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = "strategy"
    #: Whether the strategy reads item text embeddings whatever its parameters (a data set
    #: without them cannot run it; ``shopaug tune`` leaves it out of the space then).
    needs_embeddings: ClassVar[bool] = False
    seed: int = Field(0, description="Seed of the strategy's random choices.")

    def generate(self, context: AugmentContext) -> GeneratedSequences:
        raise NotImplementedError

    def describe(self) -> str:
        """``name(param=value, ...)``: stored with every sample as its ``generator``."""
        params = ", ".join(f"{k}={v}" for k, v in self.model_dump().items())
        return f"{self.name}({params})"

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


# ----------------------------------------------------------------------------------------------
# Vectorised building blocks over ragged rows
# ----------------------------------------------------------------------------------------------


def eligible_rows(train: Sequences, min_length: int, copies: int) -> np.ndarray:
    """Indices of rows long enough to augment, each repeated ``copies`` times."""
    return np.repeat(np.flatnonzero(train.lengths >= min_length), copies)


def windows(
    train: Sequences, rows: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> Sequences:
    """Contiguous pieces ``row[start : start + length]`` of the given rows."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    offsets = np.arange(int(indptr[-1]), dtype=np.int64) - np.repeat(indptr[:-1], lengths)
    take = np.repeat(train.indptr[rows] + starts, lengths) + offsets
    return Sequences(train.users[rows], indptr, train.items[take])


def pick_per_row(seq: Sequences, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask choosing ``counts[r]`` random events of every row ``r`` (all if fewer)."""
    keys = rng.random(seq.n_events)
    row = seq.row_ids()
    order = np.lexsort((keys, row))
    rank = np.empty(seq.n_events, dtype=np.int64)
    rank[order] = np.arange(seq.n_events) - np.repeat(seq.indptr[:-1], seq.lengths)
    return rank < counts[row]


def random_neighbour(
    table: np.ndarray, scores: np.ndarray, items: np.ndarray, top: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One neighbour (and its score) of each item, uniformly among its ``top`` best; -1 if none."""
    width = np.minimum(top, (table[items, :top] >= 0).sum(axis=1))
    has = width > 0
    column = np.zeros(len(items), dtype=np.int64)
    column[has] = (rng.random(int(has.sum())) * width[has]).astype(np.int64)
    chosen = np.where(has, table[items, column], -1)
    chosen_score = np.where(has, scores[items, column], 0.0)
    return chosen, np.clip(chosen_score, 0.0, 1.0).astype(np.float32)


def mean_per_row(values: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Mean of ``values`` grouped by ``rows`` (0 for rows without values)."""
    total = np.bincount(rows, weights=values, minlength=n_rows)
    count = np.bincount(rows, minlength=n_rows)
    return np.divide(total, count, out=np.zeros(n_rows), where=count > 0).astype(np.float32)
