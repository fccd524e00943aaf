"""What a running service knows: one model version plus everything the log accepted since.

:class:`ShopState` is built from a :class:`~shopaug.serve.bundle.Bundle`, replays the feedback log
from the bundle's offset, and afterwards applies new log records whenever :meth:`ShopState.refresh`
is called (the app calls it before every read). A user's history is the bundle's events plus the
logged ones, so an accepted event changes that user's next recommendations at once; a logged item
is encoded, put in the ANN and search indexes and, for content models, given a vector from its
text, so it can be recommended before any retraining.

Ranking rules: a history the model knows is ranked by the model; an unknown user (or a session of
unknown items) gets the items most bought and viewed so far, live counts included. A category
restricts either to the items whose category path contains that name; a category with no items is
an empty answer, not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shopaug.data.dataset import Dataset
from shopaug.data.schema import split_categories
from shopaug.data.sequences import Sequences
from shopaug.models.base import top_k
from shopaug.serve.bundle import Bundle
from shopaug.serve.feedback import FeedbackLog, LogRecord
from shopaug.serve.index import ItemIndex
from shopaug.serve.scoring import HistoryScorer

logger = logging.getLogger("shopaug.serve")

#: Builds the text encoder on first use; a service that never sees a new item never loads it.
EncoderFactory = Callable[[], Any]


@dataclass(frozen=True)
class Ranked:
    """A ranked answer: item indices, their scores, and whether the model or the fallback ranked."""

    items: np.ndarray
    scores: np.ndarray
    source: str


class ShopState:
    """The served model version with its catalog, indexes, histories and live popularity."""

    def __init__(self, bundle: Bundle, log: FeedbackLog, encoder: EncoderFactory) -> None:
        self.bundle = bundle
        self.version = bundle.manifest.version
        self.model = bundle.model
        self.scorer = HistoryScorer(self.model)
        self.log = log
        self._encoder_factory = encoder
        self._encoder: Any = None
        self.items = bundle.items.reset_index(drop=True).copy()
        self.item_index = {
            item_id: i for i, item_id in enumerate(self.items["item_id"].astype(str))
        }
        self.embeddings = np.asarray(bundle.embeddings, dtype=np.float32)
        self.ann = ItemIndex.build(self.embeddings)
        self.search = bundle.search
        self.categories: dict[str, list[int]] = {}
        self._index_categories(range(len(self.items)))
        self._refresh_fields()
        codes = self.items_of(bundle.events["item_id"].astype(str))
        self.popularity = np.bincount(codes, minlength=len(self.items)).astype(np.float64)
        self.histories: dict[str, list[int]] = {}
        for user, item in zip(bundle.events["user_id"].astype(str), codes, strict=True):
            self.histories.setdefault(user, []).append(int(item))
        self.offset = bundle.manifest.log_offset
        self.refresh()

    # -- catalog -------------------------------------------------------------------------------

    @property
    def n_items(self) -> int:
        return len(self.items)

    def items_of(self, item_ids: pd.Series | list[str]) -> np.ndarray:
        """Indices of known item ids (callers check membership first)."""
        return np.fromiter((self.item_index[i] for i in item_ids), dtype=np.int64)

    def item_fields(self, index: int) -> dict[str, Any]:
        """What a response shows of an item (a plain list lookup: pandas row access costs
        more than ranking a history)."""
        return self._fields[index]

    def _refresh_fields(self) -> None:
        table = self.items.reindex(columns=["item_id", "title", "categories", "price"])
        table = table.astype({"item_id": str, "title": str})
        table["categories"] = table["categories"].fillna("").astype(str)
        prices = pd.to_numeric(table["price"], errors="coerce")
        table["price"] = prices.astype(object).where(prices.notna(), None)
        self._fields = table.to_dict("records")

    def _index_categories(self, indices: range | list[int]) -> None:
        for i in indices:
            path = self.items.at[i, "categories"]
            for name in split_categories("" if pd.isna(path) else str(path)):
                bucket = self.categories.setdefault(name.casefold(), [])
                if not bucket or bucket[-1] != i:
                    bucket.append(i)

    def category_mask(self, category: str | None) -> np.ndarray | None:
        """Items whose category path contains ``category`` (case-insensitive); None: no filter."""
        if category is None:
            return None
        mask = np.zeros(self.n_items, dtype=bool)
        mask[self.categories.get(category.strip().casefold(), [])] = True
        return mask

    # -- the log -------------------------------------------------------------------------------

    def refresh(self) -> int:
        """Apply log records written since the last call (by any worker); returns how many."""
        if self.log.size() == self.offset:
            return 0
        records, self.offset = self.log.read(self.offset)
        items = [r.data for r in records if r.kind == "item"]
        if items:
            self._apply_items(items)
        for record in records:
            if record.kind == "event":
                self._apply_event(record)
        return len(records)

    def _apply_event(self, record: LogRecord) -> None:
        item = self.item_index.get(str(record.data["item_id"]))
        if item is None:
            # Events are checked against the catalog before they are logged, and items are
            # logged before events may name them, so only a hand-edited log gets here.
            logger.warning("log event names unknown item %r; not applied", record.data["item_id"])
            return
        self.histories.setdefault(str(record.data["user_id"]), []).append(item)
        self.popularity[item] += 1.0

    def _apply_items(self, rows: list[dict[str, Any]]) -> None:
        """Insert new items and update changed ones everywhere they are indexed."""
        frame = pd.DataFrame(rows).drop_duplicates("item_id", keep="last")
        frame = frame.reindex(columns=self.items.columns.union(frame.columns, sort=False))
        vectors = self.encode(frame)
        known = frame["item_id"].map(self.item_index)
        changed = known.notna().to_numpy()
        if changed.any():
            self._update_items(
                known[changed].astype(int).to_numpy(), frame[changed], vectors[changed]
            )
        if (~changed).any():
            self._add_items(frame[~changed], vectors[~changed])
        self._refresh_fields()
        self.ann.upsert(frame["item_id"].map(self.item_index).to_numpy(), vectors)
        if self.search is not None:
            self.search.add_items(frame.reset_index(drop=True))  # replaces changed ones by id

    def _update_items(self, indices: np.ndarray, frame: pd.DataFrame, vectors: np.ndarray) -> None:
        for column in frame.columns:
            if column in self.items.columns:
                self.items.loc[indices, column] = frame[column].to_numpy()
        self.embeddings[indices] = vectors
        self.categories = {}  # a changed path must also leave its old categories
        self._index_categories(range(self.n_items))
        self._update_model("set_item_texts", indices, vectors)

    def _add_items(self, frame: pd.DataFrame, vectors: np.ndarray) -> None:
        first = self.n_items
        self.items = pd.concat([self.items, frame.reset_index(drop=True)], ignore_index=True)
        for offset, item_id in enumerate(frame["item_id"].astype(str)):
            self.item_index[item_id] = first + offset
        self.embeddings = np.concatenate([self.embeddings, vectors])
        self.popularity = np.concatenate([self.popularity, np.zeros(len(frame))])
        self._index_categories(list(range(first, self.n_items)))
        self._update_model("add_items", vectors)

    def _update_model(self, method: str, *args: Any) -> None:
        """Give a model that knows items by their text (content) the new texts. Any other model,
        or one that cannot take them, ranks only the items it was fit on until the next retrain:
        a catalog change must never break the service (the item is logged already)."""
        if not hasattr(self.model, method):
            return
        try:
            getattr(self.model, method)(*args)
        except ValueError as exc:
            logger.warning("model %s cannot take new item texts: %s", self.version, exc)
        self.scorer.invalidate()

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Text embeddings of catalog rows, from the same fields training encoded."""
        if self._encoder is None:
            self._encoder = self._encoder_factory()
        return self._encoder.encode(catalog_texts(frame))

    # -- ranking -------------------------------------------------------------------------------

    def recommend(
        self, history: list[int], k: int, category: str | None, exclude_seen: bool
    ) -> Ranked:
        """Top ``k`` items for a history (model), or the popular ones for an empty history."""
        known = [i for i in history if i < self.model.n_items_]
        if known:
            scores = np.full(self.n_items, -np.inf, dtype=np.float32)
            scores[: self.model.n_items_] = self.scorer.score(known)
            source = "model"
        else:
            scores = self.popularity.astype(np.float32)
            source = "popular"
        return self._top(scores, history if exclude_seen else [], k, category, source)

    def _top(
        self, scores: np.ndarray, seen: list[int], k: int, category: str | None, source: str
    ) -> Ranked:
        scores[seen] = -np.inf
        mask = self.category_mask(category)
        if mask is not None:
            scores[~mask] = -np.inf
        top = top_k(scores[None, :], k)[0]
        top = top[np.isfinite(scores[top])]
        return Ranked(top, scores[top], source)

    def similar(self, item: int, k: int) -> Ranked:
        ids, scores = self.ann.similar(item, k)
        return Ranked(ids, scores, "ann")


def catalog_texts(frame: pd.DataFrame) -> list[str]:
    """Encoder input of catalog rows: the text :meth:`Dataset.item_texts` gives in training."""
    empty = Sequences.from_lists([], [])
    view = Dataset(frame.reset_index(drop=True), pd.DataFrame(), empty, np.array([]))
    return view.item_texts()
