"""What every part of search shares: the configuration, filters, hits and the live item table.

Items live in *slots*: slot ``s`` is row ``s`` of :class:`ItemTable` and document ``s`` of both
the keyword and the dense index. A slot is never reused. Changing an item retires its slot (a
tombstone) and appends a new one; removing it only retires the slot. This keeps the three
structures aligned without renumbering, and lets filters and tombstones be one boolean mask that
both retrievers apply (BM25 on its full score vector, FAISS through an ID selector).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopaug.data.schema import split_categories
from shopaug.encode.text_encoder import Backend

#: Text fields that are indexed, in the order the dense encoder reads them.
TEXT_FIELDS = ("title", "brand", "categories", "description")
#: Keyword search alone reads ``expansion``: words shoppers type for an item that its own fields
#: lack (doc2query--, :mod:`shopaug.search.expansion`). The encoder reads only what the shop wrote.
KEYWORD_FIELDS = (*TEXT_FIELDS, "expansion")
TABLE_COLUMNS = ("item_id", *KEYWORD_FIELDS, "price")


class SearchFilters(BaseModel):
    """Hard constraints on results. ``category`` matches any level of an item's category path
    (or a path prefix such as ``"Pets > Dogs"``); ``brand`` is an exact, case-insensitive match;
    prices are inclusive bounds and exclude items without a price."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str | None = None
    brand: str | None = None
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ordered_prices(self) -> SearchFilters:
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            raise ValueError(f"min_price {self.min_price} is above max_price {self.max_price}")
        return self

    def active(self) -> bool:
        return any(v is not None for v in self.model_dump().values())


@dataclass(frozen=True)
class SearchHit:
    """One result: ``rank`` is 1-based; ``highlights`` maps a field to its text with the matched
    query words wrapped in ``<em>...</em>`` (only fields where a word matched)."""

    item_id: str
    score: float
    rank: int
    highlights: dict[str, str] = field(default_factory=dict)


class FieldWeights(BaseModel):
    """How much a BM25 match in each field counts. A title or brand hit says more about what the
    product *is* than a word somewhere in its description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: float = Field(3.0, ge=0)
    brand: float = Field(2.0, ge=0)
    categories: float = Field(2.0, ge=0)
    description: float = Field(1.0, ge=0)
    expansion: float = Field(
        1.0, ge=0, description="Synthetic queries appended to an item (empty unless expanded)."
    )

    def items(self) -> list[tuple[str, float]]:
        return [(f, float(getattr(self, f))) for f in KEYWORD_FIELDS if getattr(self, f) > 0]


class SearchConfig(BaseModel):
    """Everything that changes what a :class:`~shopaug.search.engine.SearchEngine` returns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["bm25", "dense", "hybrid"] = "hybrid"
    fusion: Literal["rrf", "score"] = Field(
        "rrf", description="Reciprocal-rank fusion, or fusion of min-max normalised scores."
    )
    field_weights: FieldWeights = FieldWeights()
    encoder: str | None = Field(
        None, description="Local sentence-transformers folder (default: packaged MiniLM)."
    )
    item_backend: Backend = Field(
        "torch",
        description="Catalog encoding runtime: sentence-transformers (the reference vectors), "
        "ONNX Runtime, or ONNX with int8 weights (several times faster on a CPU).",
    )
    item_max_length: int | None = Field(
        None, ge=8, description="Tokens of an item's text the encoder reads (default: 256)."
    )
    query_backend: Literal["auto", "onnx", "torch"] = Field(
        "auto",
        description="Query encoding runtime: ONNX Runtime (same vectors, about a third of the "
        "latency), PyTorch, or ONNX when the model and environment allow it.",
    )
    candidates: int = Field(100, ge=1, description="Depth each retriever contributes to fusion.")
    rrf_k: int = Field(60, ge=1, description="The constant of reciprocal-rank fusion.")
    dense_weight: float = Field(
        0.5, ge=0, le=1, description="Share of the dense score in score fusion."
    )
    hnsw_threshold: int = Field(
        20_000, ge=1, description="Catalog size from which dense search uses HNSW, not exact."
    )
    hnsw_m: int = Field(32, ge=4)
    hnsw_ef_search: int = Field(128, ge=1)
    delta_limit: float = Field(
        0.1,
        gt=0,
        description="Rebuild the keyword index when changed items exceed this share of it.",
    )


class ItemTable:
    """The catalog as slots (see the module docstring), with an ``alive`` mask and filter masks."""

    def __init__(self) -> None:
        self.frame = pd.DataFrame({c: pd.Series(dtype=object) for c in TABLE_COLUMNS})
        self.frame["price"] = self.frame["price"].astype(np.float64)
        self.alive = np.zeros(0, dtype=bool)
        self.slot_of: dict[str, int] = {}
        self._masks: dict[tuple[str, str], np.ndarray] = {}
        self._columns: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        """Number of live items."""
        return len(self.slot_of)

    @property
    def n_slots(self) -> int:
        return len(self.frame)

    def upsert(self, items: pd.DataFrame) -> np.ndarray:
        """Append ``items`` as new slots, retiring the slots of ids already present; returns the
        new slots. Rows are checked first, so a bad batch changes nothing."""
        rows = normalise_items(items)
        old = [self.slot_of[i] for i in rows["item_id"] if i in self.slot_of]
        self.alive[old] = False
        start = self.n_slots
        slots = np.arange(start, start + len(rows))
        self.frame = pd.concat([self.frame, rows], ignore_index=True) if start else rows
        self.alive = np.concatenate([self.alive, np.ones(len(rows), dtype=bool)])
        self.slot_of.update(zip(rows["item_id"], slots.tolist(), strict=True))
        self._masks.clear()
        self._columns.clear()
        return slots

    @classmethod
    def restore(cls, frame: pd.DataFrame, alive: np.ndarray) -> ItemTable:
        """The table saved as ``frame`` (every slot, retired ones too) and its ``alive`` mask."""
        table = cls()
        # an index saved before a text field existed has no column for it: empty text
        absent = {name: "" for name in KEYWORD_FIELDS if name not in frame}
        frame = frame.assign(**absent).reindex(columns=list(TABLE_COLUMNS))
        table.frame = frame.reset_index(drop=True)
        table.alive = np.asarray(alive, dtype=bool).copy()
        live = table.frame["item_id"].to_numpy()[table.alive]
        table.slot_of = dict(zip(live.tolist(), np.flatnonzero(table.alive).tolist(), strict=True))
        return table

    def remove(self, item_ids: Sequence[str]) -> np.ndarray:
        """Retire the slots of ``item_ids``; an unknown id is an error (nothing is removed)."""
        ids = [str(i) for i in item_ids]
        unknown = [i for i in ids if i not in self.slot_of]
        if unknown:
            raise KeyError(f"remove_items: unknown item_id(s) {unknown[:5]}")
        slots = np.array([self.slot_of.pop(i) for i in dict.fromkeys(ids)], dtype=np.int64)
        self.alive[slots] = False
        return slots

    def live_slots(self) -> np.ndarray:
        return np.flatnonzero(self.alive)

    def texts(self, slots: np.ndarray, fields: Sequence[str]) -> list[str]:
        """``fields`` of each slot joined into one text (empty fields skipped): what the dense
        encoder reads."""
        columns = self.values(slots, fields)
        return [". ".join(p for p in parts if p) for parts in zip(*columns.values(), strict=True)]

    def values(self, slots: np.ndarray, fields: Sequence[str]) -> dict[str, list]:
        """``fields`` of ``slots``, one list per field. Read from per-column object arrays kept
        until the next upsert: selecting rows from the frame cost a third of a warm query."""
        out = {}
        for name in fields:
            if name not in self._columns:
                self._columns[name] = self.frame[name].to_numpy(dtype=object)
            out[name] = self._columns[name][np.asarray(slots, dtype=np.int64)].tolist()
        return out

    def allowed(self, filters: SearchFilters | None) -> np.ndarray:
        """Mask over slots of live items that pass ``filters``."""
        mask = self.alive.copy()
        if filters is None:
            return mask
        if filters.category is not None:
            mask &= self._cached("category", filters.category, self._category_mask)
        if filters.brand is not None:
            mask &= self._cached("brand", filters.brand, self._brand_mask)
        price = self.frame["price"].to_numpy()
        if filters.min_price is not None:
            mask &= price >= filters.min_price
        if filters.max_price is not None:
            mask &= price <= filters.max_price
        return mask

    def _cached(self, kind: str, value: str, build: Callable[[str], np.ndarray]) -> np.ndarray:
        key = (kind, value.strip().lower())
        if key not in self._masks:
            self._masks[key] = build(key[1])
        return self._masks[key]

    def _brand_mask(self, brand: str) -> np.ndarray:
        return (self.frame["brand"].str.lower().str.strip() == brand).to_numpy()

    def _category_mask(self, category: str) -> np.ndarray:
        wanted = [p.lower() for p in split_categories(category)]
        paths = self.frame["categories"].tolist()

        def matches(path: str) -> bool:
            levels = [p.lower() for p in split_categories(path)]
            if len(wanted) == 1:
                return wanted[0] in levels
            return levels[: len(wanted)] == wanted

        return np.fromiter((matches(p) for p in paths), dtype=bool, count=len(paths))


def normalise_items(items: pd.DataFrame) -> pd.DataFrame:
    """The indexed columns of ``items`` as clean text and float prices.

    Errors name the column and the first offending row: a missing or empty ``item_id``, an id
    repeated within the batch, or a price that is not a number.
    """
    if "item_id" not in items.columns:
        raise ValueError(f"items: no 'item_id' column (columns: {list(items.columns)})")
    frame = items.reset_index(drop=True)
    ids = frame["item_id"]
    empty = ids.isna() | (ids.astype(str).str.strip() == "")
    if empty.any():
        raise ValueError(f"items row {int(np.flatnonzero(empty)[0])}: empty item_id")
    ids = ids.astype(str).str.strip()
    repeated = ids.duplicated()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise ValueError(f"items row {row}: item_id {ids[row]!r} appears twice in the batch")
    out = pd.DataFrame({"item_id": ids})
    for name in KEYWORD_FIELDS:
        column = frame[name] if name in frame else pd.Series([""] * len(frame))
        out[name] = column.fillna("").astype(str).str.strip().to_numpy()
    price = frame["price"] if "price" in frame else pd.Series([np.nan] * len(frame))
    numeric = pd.to_numeric(price, errors="coerce")
    bad = numeric.isna() & price.notna() & (price.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"items row {row}: price {price[row]!r} is not a number")
    out["price"] = numeric.astype(np.float64).to_numpy()
    return out
