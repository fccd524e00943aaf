"""The search facade: build from a catalog, search with filters, update items, save and load.

One :class:`SearchEngine` owns the item table, the keyword index and (unless the mode is plain
BM25) the dense index, all addressed by slot (see :mod:`shopaug.search.base`). ``search`` runs the
configured retrievers on the items that pass the filters, fuses their candidate lists and returns
the top ``k`` with the matched query words highlighted.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from shopaug.encode import TextEncoder, default_model_path
from shopaug.search.base import (
    TEXT_FIELDS,
    ItemTable,
    SearchConfig,
    SearchFilters,
    SearchHit,
)
from shopaug.search.dense import DenseIndex, QueryEncoder
from shopaug.search.hybrid import Ranked, fuse, top_of_scores
from shopaug.search.keyword import KeywordIndex, highlight, tokenize

Mode = Literal["bm25", "dense", "hybrid"]
#: ``on_items(done, total)``: catalog items encoded so far, of ``total`` (a bar with a rate).
ItemsCallback = Callable[[int, int], None]
#: Items encoded per step when a caller follows the encoding: one update per step, a few a
#: second on a CPU, and the encoder's cache still commits whole chunks.
ENCODE_STEP = 512
_FORMAT_VERSION = 1
#: Files of the dense index; a bm25 engine saved over a hybrid one must not leave them behind.
#: Folder of a saved index that holds its own copy of a fine-tuned encoder.
BUNDLED_ENCODER = "encoder"
_DENSE_FILES = ("vectors.npy", "dense.faiss")


class SearchEngine:
    """Keyword, dense or hybrid product search over a catalog (see the module docstring)."""

    def __init__(self, config: SearchConfig | None = None, encoder: TextEncoder | None = None):
        self.config = config or SearchConfig()
        self._encoder = encoder
        self.table = ItemTable()
        self.keyword = KeywordIndex(self.config.field_weights, self.config.delta_limit)
        self.dense: DenseIndex | None = None
        self._queries: QueryEncoder | None = None

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        catalog: pd.DataFrame,
        config: SearchConfig | None = None,
        encoder: TextEncoder | None = None,
        progress: bool = False,
        item_vectors: np.ndarray | None = None,
        on_items: ItemsCallback | None = None,
    ) -> SearchEngine:
        """Index ``catalog`` (item_id, title, description, brand, categories, price; missing text
        columns count as empty). The dense index is built unless ``config.mode`` is ``bm25``.

        ``item_vectors`` (one normalised row per catalog row, made by the same encoder) skips
        encoding the catalog here, e.g. when a GPU machine or the pipeline's encode stage already
        did it; queries and later updates are still encoded by ``encoder``.

        Encoding the catalog is most of the time of a build (minutes for tens of thousands of
        items on a CPU), so ``on_items(done, total)`` hears of every :data:`ENCODE_STEP` items
        encoded: enough for a bar with a rate and an ETA. ``progress`` is the encoder's own bar.
        """
        config = config or SearchConfig()
        if encoder is not None:
            config = config.model_copy(update={"encoder": _encoder_path(encoder)})
        engine = cls(config, encoder)
        slots = engine.table.upsert(catalog)
        engine.keyword.build(engine.table)
        if config.mode != "bm25":
            if item_vectors is not None and len(item_vectors) != len(slots):
                raise ValueError(
                    f"item_vectors has {len(item_vectors)} rows for {len(slots)} catalog rows"
                )
            engine._add_vectors(slots, progress, item_vectors, on_items)
        return engine

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = item_text_encoder(self.config)
        return self._encoder

    @property
    def query_encoder(self) -> QueryEncoder:
        if self._queries is None:
            self._queries = QueryEncoder(
                self.encoder.model, self.encoder.device, backend=self.config.query_backend
            )
        return self._queries

    def __len__(self) -> int:
        return len(self.table)

    # --- updates -----------------------------------------------------------------------------

    def add_items(self, items: pd.DataFrame) -> None:
        """Add new items and replace changed ones (matched by ``item_id``)."""
        live_before = len(self.table)
        slots = self.table.upsert(items)
        retired = live_before + len(slots) - len(self.table)
        self.keyword.added(self.table, slots, retired)
        if self.dense is not None:
            self._add_vectors(slots, progress=False)

    def remove_items(self, item_ids: Sequence[str]) -> None:
        """Remove items by id; an id that is not in the index is an error."""
        retired = self.table.remove(item_ids)
        self.keyword.removed(self.table, len(retired))

    def _add_vectors(
        self,
        slots: np.ndarray,
        progress: bool,
        vectors: np.ndarray | None = None,
        on_items: ItemsCallback | None = None,
    ) -> None:
        if vectors is None:
            vectors = self._encode_items(slots, progress, on_items)
        if self.dense is None:
            self.dense = DenseIndex(
                vectors.shape[1],
                self.config.hnsw_threshold,
                self.config.hnsw_m,
                self.config.hnsw_ef_search,
            )
        self.dense.add(vectors, n_live=len(self.table))

    def _encode_items(
        self, slots: np.ndarray, progress: bool, on_items: ItemsCallback | None
    ) -> np.ndarray:
        """Vectors of ``slots``' texts; in steps of :data:`ENCODE_STEP` when ``on_items``
        follows along (the encoder caches each step, so the vectors are the same)."""
        texts = self.table.texts(slots, TEXT_FIELDS)
        if on_items is None or not texts:
            return self.encoder.encode(texts, progress=progress)
        on_items(0, len(texts))
        parts = []
        for start in range(0, len(texts), ENCODE_STEP):
            parts.append(self.encoder.encode(texts[start : start + ENCODE_STEP]))
            on_items(min(start + ENCODE_STEP, len(texts)), len(texts))
        return np.concatenate(parts)

    # --- search ------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        filters: SearchFilters | None = None,
        mode: Mode | None = None,
    ) -> list[SearchHit]:
        """The ``k`` best items for ``query`` among those passing ``filters``; ``mode``
        overrides the configured one for this call."""
        ranked = self.rank(query, k, filters, mode)
        terms = set(tokenize([query])[0])
        values = self.table.values(ranked.slots, ["item_id", *TEXT_FIELDS])
        return [
            SearchHit(
                values["item_id"][i],
                float(score),
                i + 1,
                self._highlights({name: values[name][i] for name in TEXT_FIELDS}, terms),
            )
            for i, score in enumerate(ranked.scores)
        ]

    def rank(
        self,
        query: str,
        k: int = 10,
        filters: SearchFilters | None = None,
        mode: Mode | None = None,
    ) -> Ranked:
        """Slots and scores of the top ``k``, best first (what :meth:`search` shows)."""
        if not query or not query.strip():
            raise ValueError("query is empty")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        mode = mode or self.config.mode
        if mode != "bm25" and self.dense is None:
            raise ValueError(f"mode {mode!r} needs the dense index; this engine was built as bm25")
        allowed = self.table.allowed(filters)
        depth = max(k, self.config.candidates)
        keyword = dense = None
        if mode in ("bm25", "hybrid"):
            keyword = top_of_scores(self.keyword.scores(self.table, query), allowed, depth)
        if mode in ("dense", "hybrid"):
            vector = self.query_encoder.encode(query)
            dense = Ranked(*self.dense.search(vector, depth, allowed))
        if keyword is not None and dense is not None:
            c = self.config
            return fuse(keyword, dense, c.fusion, c.rrf_k, c.dense_weight).top(k)
        return (keyword or dense).top(k)

    def item_ids(self, ranked: Ranked) -> list[str]:
        return self.table.values(ranked.slots, ["item_id"])["item_id"]

    @staticmethod
    def _highlights(row: dict[str, str], terms: set[str]) -> dict[str, str]:
        out = {}
        for name in TEXT_FIELDS:
            marked = highlight(row[name], terms, snippet=name == "description")
            if marked is not None:
                out[name] = marked
        return out

    # --- persistence -------------------------------------------------------------------------

    def save(self, path: str | Path, bundle_encoder: bool = False) -> None:
        """Write config, item table and dense index under the folder ``path``. The keyword
        index is rebuilt on load (seconds even for 50k items), which also compacts it.

        ``bundle_encoder`` copies a local encoder folder (a fine-tune) into the index, so the
        index keeps working when the training run's folder is cleaned up or the index is moved
        to a server; the saved config then names it relative to the index."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = self.config
        if bundle_encoder and config.encoder is not None:
            bundled = path / BUNDLED_ENCODER
            if Path(config.encoder).resolve() != bundled.resolve():  # not saved over itself
                shutil.rmtree(bundled, ignore_errors=True)
                shutil.copytree(config.encoder, bundled)
            config = config.model_copy(update={"encoder": BUNDLED_ENCODER})
        self.table.frame.assign(alive=self.table.alive).to_parquet(path / "items.parquet")
        if self.dense is not None:
            self.dense.save(path)
        else:  # load() reads a dense index wherever its files are
            for name in _DENSE_FILES:
                (path / name).unlink(missing_ok=True)
        meta = {"format": _FORMAT_VERSION, "config": config.model_dump(mode="json")}
        (path / "search.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path, encoder: TextEncoder | None = None) -> SearchEngine:
        """The engine :meth:`save` wrote: nothing is encoded, so a saved index answers its first
        query in the time of loading the query encoder, not of encoding the catalog."""
        path = Path(path)
        meta_path = path / "search.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{path} is not a saved search engine (no search.json)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != _FORMAT_VERSION:
            raise ValueError(f"{meta_path}: unsupported format {meta.get('format')!r}")
        config = SearchConfig.model_validate(meta["config"])
        if config.encoder == BUNDLED_ENCODER:
            config = config.model_copy(update={"encoder": str((path / BUNDLED_ENCODER).absolute())})
        engine = cls(config, encoder)
        frame = pd.read_parquet(path / "items.parquet")
        alive = frame.pop("alive").to_numpy(dtype=bool)
        engine.table = ItemTable.restore(frame, alive)
        engine.keyword.build(engine.table)
        if (path / "vectors.npy").exists():
            engine.dense = DenseIndex.load(
                path, config.hnsw_threshold, config.hnsw_m, config.hnsw_ef_search
            )
        return engine


def item_text_encoder(config: SearchConfig, model: str | Path | None = None) -> TextEncoder:
    """The catalog encoder ``config`` asks for (``model`` overrides its ``encoder`` folder)."""
    return TextEncoder(
        model if model is not None else config.encoder,
        backend=config.item_backend,
        max_length=config.item_max_length,
    )


def _encoder_path(encoder: TextEncoder) -> str | None:
    """The encoder as a config value: None for the packaged default, else its folder."""
    try:
        if encoder.model.resolve() == default_model_path().resolve():
            return None
    except ImportError:
        pass
    return str(encoder.model)
