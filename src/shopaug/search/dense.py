"""Dense retrieval: item vectors from the text encoder in a FAISS inner-product index.

Vectors are L2-normalised, so inner product is cosine similarity. A catalog below
``hnsw_threshold`` live items is searched exactly (``IndexFlatIP``, a few milliseconds even at
tens of thousands of items); above it an ``IndexHNSWFlat`` graph keeps search time nearly flat
as the catalog grows, at a small cost in recall. FAISS ids are slots (vectors are added in slot
order), so tombstones and filters are one allowed-mask passed as an ``IDSelectorBitmap``. When
the mask leaves few items, those are scored directly instead: exact, and it avoids HNSW's
weakness on very selective filters (the graph walk finds too few allowed neighbours).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shopaug.encode.onnx_encoder import OnnxSentenceEncoder, OnnxUnavailable

#: Allowed items at or below which a filtered search scores them directly, not through FAISS.
DIRECT_LIMIT = 4096

logger = logging.getLogger(__name__)


class DenseIndex:
    """FAISS index over item vectors, one row per slot (see :mod:`shopaug.search.base`)."""

    def __init__(self, dim: int, hnsw_threshold: int, hnsw_m: int = 32, ef_search: int = 128):
        self.dim = dim
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.index = self._new_index(hnsw=False)

    @property
    def kind(self) -> str:
        return "hnsw" if self._is_hnsw() else "flat"

    def _is_hnsw(self) -> bool:
        import faiss

        return isinstance(self.index, faiss.IndexHNSWFlat)

    def _new_index(self, hnsw: bool) -> Any:
        import faiss

        if not hnsw:
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = self.ef_search
        return index

    def add(self, vectors: np.ndarray, n_live: int) -> None:
        """Append the vectors of new slots; switch to HNSW once ``n_live`` reaches the threshold
        (the switch re-adds every stored vector once)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        self.vectors = np.concatenate([self.vectors, vectors])
        if n_live >= self.hnsw_threshold and not self._is_hnsw():
            self.index = self._new_index(hnsw=True)
            self.index.add(self.vectors)
        elif len(vectors):
            self.index.add(vectors)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` slots by cosine similarity among ``allowed`` (None: all), best first."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if allowed is not None and allowed.all():
            allowed = None
        if allowed is not None and int(allowed.sum()) <= DIRECT_LIMIT:
            slots = np.flatnonzero(allowed)
            scores = self.vectors[slots] @ query[0]
            top = np.argsort(-scores, kind="stable")[:k]
            return slots[top], scores[top]
        k = min(k, self.index.ntotal)
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        params, borrowed = self._params(allowed)
        scores, slots = self.index.search(query, k, params=params)
        del borrowed  # kept alive until the search is done: the C++ side only borrows it
        keep = slots[0] >= 0
        return slots[0][keep].astype(np.int64), scores[0][keep]

    def _params(self, allowed: np.ndarray | None) -> tuple[object, object]:
        """FAISS search parameters (efSearch, selector of ``allowed``) and the objects they
        point into."""
        import faiss

        params = faiss.SearchParametersHNSW(efSearch=self.ef_search) if self._is_hnsw() else None
        if allowed is None:
            return params, None
        bits = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
        params = params or faiss.SearchParameters()
        params.sel = selector
        return params, (bits, selector)

    def save(self, path: Path) -> None:
        import faiss

        np.save(path / "vectors.npy", self.vectors)
        faiss.write_index(self.index, str(path / "dense.faiss"))

    @classmethod
    def load(cls, path: Path, hnsw_threshold: int, hnsw_m: int, ef_search: int) -> DenseIndex:
        import faiss

        vectors = np.load(path / "vectors.npy")
        out = cls(vectors.shape[1], hnsw_threshold, hnsw_m, ef_search)
        out.vectors = vectors
        out.index = faiss.read_index(str(path / "dense.faiss"))
        if out._is_hnsw():
            out.index.hnsw.efSearch = ef_search
        return out


class QueryEncoder:
    """Query vectors straight from the encoder's model, memoised in memory (LRU).

    :class:`~shopaug.encode.TextEncoder`'s SQLite cache suits catalogs (encoded once, read many
    times); at query time a read and a committed write per new query cost a third of the time
    of encoding it, and a live shop's queries are mostly new or repeated within minutes. The
    vectors are the same: same model, same normalisation.

    ``backend`` ``onnx`` runs the model on ONNX Runtime
    (:class:`~shopaug.encode.onnx_encoder.OnnxSentenceEncoder`), the bulk of a hybrid query's
    latency cut by about two thirds; ``auto`` takes it when the model and environment allow and
    otherwise stays on PyTorch (``fallback_reason`` says why, and a warning is logged: every
    query then costs about twice as long, which nobody would otherwise notice).
    """

    def __init__(
        self,
        model: Path,
        device: str = "cpu",
        cache_size: int = 50_000,
        backend: Literal["auto", "onnx", "torch"] = "auto",
    ) -> None:
        self.model = Path(model)
        self.device = device
        self.cache_size = cache_size
        self.backend = backend
        self.fallback_reason: str | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._encode_one: Callable[[str], np.ndarray] | None = None
        self._runtime_name = ""

    def clear(self) -> None:
        """Forget memoised queries (a benchmark times each system with a cold cache)."""
        self._cache.clear()

    @property
    def runtime(self) -> str:
        """``onnx`` or ``torch``: what actually encodes (resolves ``auto``; loads the model)."""
        self._runtime()
        return self._runtime_name

    def encode(self, query: str) -> np.ndarray:
        vector = self._cache.get(query)
        if vector is None:
            vector = self._runtime()(query)
            self._cache[query] = vector
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(query)
        return vector

    def _runtime(self) -> Callable[[str], np.ndarray]:
        if self._encode_one is None:
            onnx = self._onnx_or_none()
            self._runtime_name = "torch" if onnx is None else "onnx"
            self._encode_one = onnx or self._torch()
        return self._encode_one

    def _onnx_or_none(self) -> Callable[[str], np.ndarray] | None:
        if self.backend == "torch" or self.device != "cpu":
            return None
        try:
            onnx = OnnxSentenceEncoder(self.model)
        except OnnxUnavailable as exc:
            if self.backend == "onnx":
                raise
            self.fallback_reason = str(exc)
            logger.warning(
                "queries are encoded on PyTorch, about twice as slow as ONNX Runtime: %s "
                "(set query_backend='torch' to choose PyTorch and silence this)",
                exc,
            )
            return None
        return lambda query: onnx.encode([query])[0]

    def _torch(self) -> Callable[[str], np.ndarray]:
        model = _sentence_model(str(self.model), self.device)

        def encode_one(query: str) -> np.ndarray:
            vector = model.encode(
                [query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )[0]
            return np.asarray(vector, dtype=np.float32)

        return encode_one


@lru_cache(maxsize=4)
def _sentence_model(path: str, device: str) -> Any:
    """One loaded model per folder and device, shared by every engine in the process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device, local_files_only=True)
    model.eval()
    return model
