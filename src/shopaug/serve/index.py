"""Nearest items by text embedding: the ANN index behind ``/similar``, with insert and update.

FAISS holds the vectors under their item index (``IndexIDMap2``), so a new item is one
``add_with_ids`` and a changed one a remove and an add, both visible to the next query. The
catalogs served here (up to a few hundred thousand items) fit an exact inner-product index: a
query over 100k x 384 floats takes milliseconds, and exact answers need no tuning.
"""

from __future__ import annotations

import faiss
import numpy as np


class ItemIndex:
    """Cosine nearest neighbours over L2-normalised item embeddings, keyed by item index."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._base = faiss.IndexFlatIP(dim)  # kept referenced: the ID map does not own it
        self._index = faiss.IndexIDMap2(self._base)

    @classmethod
    def build(cls, embeddings: np.ndarray) -> ItemIndex:
        index = cls(int(embeddings.shape[1]))
        index.upsert(np.arange(len(embeddings)), embeddings)
        return index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def upsert(self, ids: np.ndarray, embeddings: np.ndarray) -> None:
        """Insert items, replacing the vectors of ids already present."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = _normalised(embeddings)
        if len(self):
            self._index.remove_ids(ids)
        self._index.add_with_ids(vectors, ids)

    def similar(self, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest other items to ``item`` and their cosine similarities, best first."""
        query = self._index.reconstruct(int(item)).reshape(1, -1)
        scores, ids = self._index.search(query, min(k + 1, len(self)))
        keep = (ids[0] >= 0) & (ids[0] != item)
        return ids[0][keep][:k], scores[0][keep][:k]


def _normalised(embeddings: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32).copy()
    faiss.normalize_L2(vectors)
    return vectors
