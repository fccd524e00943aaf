"""What strategies may read: the training rows and the catalog's text, nothing else.

:class:`AugmentContext` is the leakage boundary. It is built from ``Split.train`` (never from
validation or test cases) and the item side (text embeddings, and the catalog's fields for the
LLM strategies' prompts), and every neighbour table a strategy uses is computed from it, once, and
shared by all strategies of a run. It also carries what a run wants back from strategies beyond
their samples: a progress hook for long LLM batches and per-strategy reports (calls, failures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shopaug.data.dataset import DEFAULT_TEXT_FIELDS
from shopaug.data.matrices import best_first, interaction_matrix, keep_top_per_row
from shopaug.data.sequences import Sequences

if TYPE_CHECKING:
    from shopaug.llm.base import BatchProgress

#: Catalog columns the LLM prompts read (row i of the catalog is item i).
CATALOG_FIELDS = DEFAULT_TEXT_FIELDS
#: Called with a stage label (``"llm-cold: judgments"``) after each finished LLM request.
ProgressHook = Callable[[str, "BatchProgress"], None]


@dataclass(frozen=True)
class Neighbours:
    """``items[i]`` are item i's nearest items (best first) and ``scores[i]`` their similarity.

    Rows are padded with -1 (and score 0) where an item has fewer neighbours.
    """

    items: np.ndarray
    scores: np.ndarray


@dataclass
class AugmentContext:
    """Training rows, catalog size, (optional) L2-normalised item text embeddings and (optional)
    catalog fields; ``progress`` and ``reports`` connect strategies to the run that calls them."""

    train: Sequences
    n_items: int
    embeddings: np.ndarray | None = None
    max_neighbours: int = 20
    catalog: pd.DataFrame | None = None
    progress: ProgressHook | None = field(default=None, repr=False)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _cache: dict[str, Neighbours] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.train.items) and int(self.train.items.max()) >= self.n_items:
            raise ValueError("training rows hold item indices outside the catalog")
        if self.embeddings is not None and len(self.embeddings) != self.n_items:
            raise ValueError(
                f"embeddings have {len(self.embeddings)} rows for {self.n_items} items"
            )
        if self.catalog is not None and len(self.catalog) != self.n_items:
            raise ValueError(f"catalog has {len(self.catalog)} rows for {self.n_items} items")

    @cached_property
    def item_counts(self) -> np.ndarray:
        """Training events per item (cold items have 0)."""
        return np.bincount(self.train.items, minlength=self.n_items)

    def for_rows(self, rows: np.ndarray) -> AugmentContext:
        """A context over some of the training rows (one user shard) that keeps this context's
        neighbour tables: neighbours describe all training rows, and a shard must not see
        different ones than the whole run would."""
        shard = AugmentContext(
            self.train.select_rows(rows),
            self.n_items,
            self.embeddings,
            self.max_neighbours,
            self.catalog,
        )
        shard._cache.update(self._cache)
        return shard

    def prepare(self) -> None:
        """Compute the neighbour tables now (text ones only if there are embeddings)."""
        self.cooccurrence_neighbours()
        if self.embeddings is not None:
            self.text_neighbours()
            self.text_neighbours(warm_only=True)

    def require_embeddings(self, strategy: str) -> np.ndarray:
        if self.embeddings is None:
            raise ValueError(
                f"strategy {strategy!r} needs item text embeddings: build the context with "
                "embeddings=TextEncoder().encode(dataset.item_texts())"
            )
        return self.embeddings

    def require_catalog(self, strategy: str) -> pd.DataFrame:
        """The catalog fields, for strategies that put item text into prompts."""
        if self.catalog is None:
            raise ValueError(
                f"strategy {strategy!r} needs the catalog's {', '.join(CATALOG_FIELDS)}: build "
                "the context with catalog=dataset.items"
            )
        return self.catalog

    def cooccurrence_neighbours(self) -> Neighbours:
        """Items that share training rows, by cosine of their row-incidence vectors."""
        if "cooccurrence" not in self._cache:
            incidence = interaction_matrix(self.train, self.n_items).astype(bool).astype(np.float32)
            counts = (incidence.T @ incidence).tocsr()
            counts.setdiag(0)
            counts.eliminate_zeros()
            norms = np.sqrt(np.asarray(incidence.sum(axis=0)).ravel())
            inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            cosine = sp.diags(inv) @ counts @ sp.diags(inv)
            top = keep_top_per_row(cosine.tocsr(), self.max_neighbours)
            self._cache["cooccurrence"] = _padded(top, self.max_neighbours)
        return self._cache["cooccurrence"]

    def text_neighbours(self, warm_only: bool = False) -> Neighbours:
        """Nearest items by text embedding (exact inner product with FAISS), self excluded.

        ``warm_only`` restricts the candidates to items with training events, which is what a
        cold item needs: places in real sequences where it could stand.
        """
        key = f"text-warm={warm_only}"
        if key not in self._cache:
            self._cache[key] = text_neighbours(
                self.require_embeddings("text neighbours"),
                self.max_neighbours,
                candidates=np.flatnonzero(self.item_counts > 0) if warm_only else None,
            )
        return self._cache[key]


def text_neighbours(
    embeddings: np.ndarray, k: int, candidates: np.ndarray | None = None
) -> Neighbours:
    """The ``k`` most similar ``candidates`` (default: all items) of every item, self excluded."""
    import faiss

    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    pool = np.arange(len(vectors)) if candidates is None else np.asarray(candidates, np.int64)
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(pool):
        index.add(np.ascontiguousarray(vectors[pool]))
    found = min(k + 1, len(pool))
    if found == 0:
        return Neighbours(np.full((len(vectors), k), -1), np.zeros((len(vectors), k), np.float32))
    scores, local = index.search(vectors, found)
    items = pool[local]
    # Move self (where it was found) behind the other candidates, keep the best k of the rest.
    is_self = items == np.arange(len(vectors))[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")
    items = np.take_along_axis(items, order, axis=1)[:, :k]
    scores = np.take_along_axis(scores, order, axis=1)[:, :k]
    # With fewer than k other candidates, self can still be in the kept columns: blank it.
    left = items == np.arange(len(vectors))[:, None]
    items[left], scores[left] = -1, 0.0
    width = items.shape[1]
    if width < k:
        items = np.pad(items, ((0, 0), (0, k - width)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, k - width)))
    return Neighbours(items.astype(np.int64), scores.astype(np.float32))


def _padded(top: sp.csr_matrix, k: int) -> Neighbours:
    """A top-k CSR matrix as dense (n, k) arrays sorted by score, padded with -1."""
    n = top.shape[0]
    items = np.full((n, k), -1, dtype=np.int64)
    scores = np.zeros((n, k), dtype=np.float32)
    rows, order, rank = best_first(top)
    items[rows[order], rank] = top.indices[order]
    scores[rows[order], rank] = top.data[order]
    return Neighbours(items, scores)
