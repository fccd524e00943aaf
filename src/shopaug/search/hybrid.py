"""Fusing the keyword and dense candidate lists: reciprocal ranks, or normalised scores.

BM25 scores are unbounded and depend on the query's length and word rarity; cosine similarities
sit in a narrow band. Adding them raw lets one retriever drown the other, so fusion either
ignores scores (reciprocal-rank fusion: ``sum 1 / (rrf_k + rank)``, robust, no tuning) or puts
each list's scores on [0, 1] by min-max over its own candidates and mixes them with
``dense_weight`` (uses score gaps, which RRF throws away, but needs the weight chosen on
validation queries). Filters are applied before retrieval (see ``ItemTable.allowed``), so both
lists hold allowed items only and fusion never needs to know about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Ranked:
    """Candidates of one retriever, best first."""

    slots: np.ndarray
    scores: np.ndarray

    def top(self, k: int) -> Ranked:
        return Ranked(self.slots[:k], self.scores[:k])


def top_of_scores(scores: np.ndarray, allowed: np.ndarray, k: int) -> Ranked:
    """The ``k`` best allowed slots with a positive score (a zero BM25 score matched nothing)."""
    candidates = np.flatnonzero(allowed & (scores > 0))
    if len(candidates) > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        candidates = candidates[part]
    order = np.lexsort((candidates, -scores[candidates]))
    return Ranked(candidates[order], scores[candidates[order]])


def reciprocal_rank_fusion(lists: list[Ranked], rrf_k: int = 60) -> Ranked:
    """``score(d) = sum over lists of 1 / (rrf_k + rank of d)`` (rank 1-based)."""
    return _combine(lists, [1.0 / (rrf_k + np.arange(1, len(r.slots) + 1)) for r in lists])


def score_fusion(lists: list[Ranked], weights: list[float]) -> Ranked:
    """``sum of weight * min-max normalised score``; a list with one score (or all equal)
    gives each of its items 1, and an item absent from a list gets 0 from it."""
    parts = []
    for ranked, weight in zip(lists, weights, strict=True):
        scores = ranked.scores.astype(np.float64)
        if len(scores) == 0:
            parts.append(scores)
            continue
        low, span = scores.min(), scores.max() - scores.min()
        normalised = (scores - low) / span if span > 0 else np.ones_like(scores)
        parts.append(weight * normalised)
    return _combine(lists, parts)


def fuse(
    keyword: Ranked,
    dense: Ranked,
    method: Literal["rrf", "score"],
    rrf_k: int = 60,
    dense_weight: float = 0.5,
) -> Ranked:
    if method == "rrf":
        return reciprocal_rank_fusion([keyword, dense], rrf_k)
    return score_fusion([keyword, dense], [1.0 - dense_weight, dense_weight])


def _combine(lists: list[Ranked], contributions: list[np.ndarray]) -> Ranked:
    """Sum contributions per slot; ties broken by slot for a stable order."""
    slots = np.concatenate([r.slots for r in lists]) if lists else np.zeros(0, np.int64)
    values = np.concatenate(contributions) if lists else np.zeros(0)
    unique, inverse = np.unique(slots, return_inverse=True)
    total = np.bincount(inverse, weights=values, minlength=len(unique))
    order = np.lexsort((unique, -total))
    return Ranked(unique[order], total[order])
