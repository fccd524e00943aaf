"""What a running service knows: one model version plus everything the log accepted since.

:class:`ShopState` is built from a :class:`~shopaug.serve.bundle.Bundle`, replays the feedback log
from the bundle's offset, and afterwards applies new log records whenever :meth:`ShopState.refresh`
is called (the app calls it before every read). A user's history is the bundle's events plus the
logged ones, so an accepted event changes that user's next recommendations at once; a logged item
is encoded, put in the ANN and search indexes and, for content models, given a vector from its
text, so it can be recommended before any retraining.

Each record is applied whole or not at all. Items are *prepared* first (checked, the new catalog
built, their texts encoded), which touches nothing served, and only then *committed*; a record
that cannot be applied is quarantined (see :mod:`shopaug.serve.replay`) and never blocks the
records after it. The offset moves past a record only once it is applied or quarantined, so every
worker ends in the same state.

Ranking rules: a history the model knows is ranked by the model; an unknown user (or a session of
unknown items) gets the items most bought and viewed so far, live counts included. A category
restricts either to the items whose category path contains that name; a category with no items is
an empty answer, not an error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shopaug.data.dataset import item_texts
from shopaug.data.schema import split_categories
from shopaug.models.base import KnowsItemsByText, top_k
from shopaug.search.base import TEXT_FIELDS, ItemTable
from shopaug.serve.bundle import Bundle
from shopaug.serve.catalog import CatalogChange, upsert_items
from shopaug.serve.feedback import FeedbackLog
from shopaug.serve.index import ItemIndex
from shopaug.serve.replay import Entry, checked_entries, set_aside
from shopaug.serve.schemas import Item
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


@dataclass(frozen=True)
class PreparedItems:
    """Items ready to commit: the catalog change and the text vector of each changed row."""

    change: CatalogChange
    vectors: np.ndarray


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
        self._encoder_lock = threading.Lock()  # items are prepared in threads too
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
        entries, end = checked_entries(self.log, self.offset)
        applied = 0
        for batch in _batches(entries):
            if batch[0].record.kind == "item":
                applied += self._apply_items(batch)
            else:
                applied += self._apply_event(batch[0])
            self.offset = batch[-1].record.end
        self.offset = end
        return applied

    def _apply_event(self, entry: Entry) -> int:
        event = entry.value
        item = self.item_index.get(event.item_id)
        if item is None:
            # Events are checked against the catalog before they are logged, and items are
            # logged before events may name them: only a hand edit or a quarantined item gets here.
            self._set_aside(entry, f"unknown item {event.item_id!r}")
            return 0
        self.histories.setdefault(event.user_id, []).append(item)
        self.popularity[item] += 1.0
        return 1

    def _apply_items(self, entries: list[Entry]) -> int:
        """Apply a run of item records as one batch; when the batch cannot be prepared, apply them
        one at a time, so only the records at fault are set aside."""
        try:
            prepared = self.prepare_items([e.value for e in entries])
        except Exception as exc:  # whatever it is, this record must not stop the log
            if len(entries) > 1:
                return sum(self._apply_items([entry]) for entry in entries)
            logger.exception("cannot apply logged item %r", entries[0].value.item_id)
            self._set_aside(entries[0], f"cannot apply item: {type(exc).__name__}: {exc}")
            return 0
        self._commit_items(prepared)
        return len(entries)

    def _set_aside(self, entry: Entry, reason: str) -> None:
        set_aside(self.log, entry.record.offset, entry.record.end, reason)

    def prepare_items(self, items: Sequence[Item]) -> PreparedItems:
        """Everything an item upsert needs that can fail, with nothing served changed: the new
        catalog, and the vectors of the changed rows (the search engine's too, so its cache is warm
        for the commit). Safe to run in a thread: it only reads the state."""
        change = upsert_items(self.items, items)
        rows = change.rows
        vectors = np.asarray(self.encode(rows), dtype=np.float32)
        if vectors.shape != (len(rows), self.embeddings.shape[1]):
            raise ValueError(
                f"the text encoder gave vectors of shape {vectors.shape}, the index holds "
                f"{self.embeddings.shape[1]} dimensions"
            )
        if self.search is not None:
            self.search.encoder.encode(search_texts(rows))
        return PreparedItems(change, vectors)

    def _commit_items(self, prepared: PreparedItems) -> None:
        """Serve the prepared items: new ones appended everywhere, changed ones replaced."""
        change, vectors = prepared.change, prepared.vectors
        updated, added = change.indices[change.updated], change.indices[~change.updated]
        rows = change.rows
        self.items = change.catalog
        self.item_index.update(zip(rows["item_id"][~change.updated].astype(str), added.tolist()))
        embeddings = np.concatenate([self.embeddings, vectors[~change.updated]])
        embeddings[updated] = vectors[change.updated]
        self.embeddings = embeddings
        self.popularity = np.concatenate([self.popularity, np.zeros(len(added))])
        if len(updated):
            self.categories = {}  # a changed path must also leave its old categories
            self._index_categories(range(self.n_items))
        else:
            self._index_categories(added.tolist())
        self._refresh_fields()
        self.ann.upsert(change.indices, vectors)
        if self.search is not None:
            self.search.add_items(rows.reset_index(drop=True))  # replaces changed ones by id
        self._update_model(updated, vectors[change.updated], vectors[~change.updated])

    def _update_model(self, updated: np.ndarray, changed: np.ndarray, added: np.ndarray) -> None:
        """Give a model that declares it knows items by their text (:class:`KnowsItemsByText`,
        the content model) the changed and new texts. Any other model, or one that cannot take
        them, ranks only the items it was fit on until the next retrain: a catalog change must
        never break the service (the item is logged already)."""
        if not isinstance(self.model, KnowsItemsByText):
            return
        try:
            if len(updated):
                self.model.set_item_texts(updated, changed)
            if len(added):
                self.model.add_items(added)
        except Exception as exc:
            logger.warning("model %s cannot take new item texts: %s", self.version, exc)
        self.scorer.invalidate()

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Text embeddings of catalog rows, from the same fields training encoded."""
        with self._encoder_lock:  # one encoder, even when two threads ask first
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


def _batches(entries: list[Entry]) -> Iterator[list[Entry]]:
    """Runs of consecutive item records (encoded together), and each event on its own."""
    run: list[Entry] = []
    for entry in entries:
        if entry.record.kind == "item":
            run.append(entry)
            continue
        if run:
            yield run
            run = []
        yield [entry]
    if run:
        yield run


def search_texts(rows: pd.DataFrame) -> list[str]:
    """What the search engine's encoder reads of catalog rows (its own table builds them)."""
    table = ItemTable()
    return table.texts(table.upsert(rows), TEXT_FIELDS)


def catalog_texts(frame: pd.DataFrame) -> list[str]:
    """Encoder input of catalog rows: the same text training encodes (:func:`~shopaug.data.dataset.item_texts`)."""
    return item_texts(frame)
