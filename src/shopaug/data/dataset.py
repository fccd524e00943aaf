"""The in-memory view of an ingested shop that models, strategies and splits work on.

Items and users keep the dense indices the store gave them; behaviour is held as
:class:`~shopaug.data.sequences.Sequences` (flat arrays), never as one Python object per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shopaug.data.schema import split_categories
from shopaug.data.sequences import Sequences
from shopaug.data.store import DatasetStore, sql_literal

DEFAULT_TEXT_FIELDS = ("title", "brand", "categories", "description")


@dataclass
class Dataset:
    """Catalog, users and their time-ordered events; ``queries`` when the shop has a query log."""

    items: pd.DataFrame
    users: pd.DataFrame
    events: Sequences
    event_types: np.ndarray
    timestamps: np.ndarray | None = None
    queries: pd.DataFrame | None = None
    name: str = "dataset"

    @classmethod
    def load(cls, run_dir: str | Path, events: tuple[str, ...] | None = None) -> Dataset:
        """Read the store of ``run_dir``; ``events`` keeps only those event types (e.g. purchases)."""
        store = DatasetStore(run_dir)
        store.require()
        con = store.connect()
        items = store.read("items")
        users = store.read("users")
        where = ""
        if events:
            where = "WHERE event IN (" + ", ".join(sql_literal(e) for e in events) + ")"
        table = con.sql(
            f"SELECT user_index, item_index, event, timestamp FROM interactions {where} "
            "ORDER BY user_index, timestamp NULLS FIRST, source_row"
        ).to_arrow_table()
        user_codes = table["user_index"].to_numpy()
        seq = Sequences.from_rows(
            user_codes, table["item_index"].to_numpy(), users["user_id"].to_numpy()
        )
        ts = table["timestamp"].to_numpy()
        has_time = table["timestamp"].null_count < len(table)
        queries = store.read("queries") if store.has("queries") else None
        return cls(
            items=items,
            users=users,
            events=seq,
            event_types=table["event"].to_numpy(zero_copy_only=False),
            timestamps=ts if has_time else None,
            queries=queries,
            name=Path(run_dir).name,
        )

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.users)

    def sequences(self, min_length: int = 0, collapse_repeats: bool = False) -> Sequences:
        """Per-user item sequences; ``collapse_repeats`` merges an item repeated back to back
        (a view then a cart of the same item is one step of a journey, not two); users with
        fewer than ``min_length`` events (after collapsing) are left out."""
        events, rows = self._selection(min_length, collapse_repeats)
        return self.events.select_events(events).select_rows(rows)

    def sequence_timestamps(
        self, min_length: int = 0, collapse_repeats: bool = False
    ) -> np.ndarray | None:
        """The timestamps aligned with :meth:`sequences` called with the same arguments."""
        if self.timestamps is None:
            return None
        events, _ = self._selection(min_length, collapse_repeats)
        return self.timestamps[events]

    def _selection(self, min_length: int, collapse_repeats: bool) -> tuple[np.ndarray, np.ndarray]:
        """Which events and which users :meth:`sequences` keeps."""
        seq = self.events
        keep = np.ones(seq.n_events, dtype=bool)
        if collapse_repeats and seq.n_events:
            keep[1:] = seq.items[1:] != seq.items[:-1]
            keep[seq.indptr[:-1][seq.lengths > 0]] = True
        lengths = np.bincount(seq.row_ids()[keep], minlength=len(seq))
        rows = lengths >= min_length
        return keep & rows[seq.row_ids()], rows

    def item_texts(self, fields: tuple[str, ...] = DEFAULT_TEXT_FIELDS) -> list[str]:
        """One text per item for encoders and keyword search: the fields joined, empty ones skipped."""
        return item_texts(self.items, fields)

    def catalog(self, fields: tuple[str, ...] = DEFAULT_TEXT_FIELDS) -> pd.DataFrame:
        """The items' text fields as text (missing ones empty), row i = item i: what LLM prompts
        and keyword search read, without the ids and prices they have no use for."""
        table = self.items.reindex(columns=list(fields)).reset_index(drop=True)
        return table.fillna("").astype(str)

    def item_categories(self, level: int = -1) -> np.ndarray:
        """The category at ``level`` of each item's path (-1: the leaf); '' when it has none."""
        paths = self.items["categories"].fillna("").astype(str)
        out = []
        for path in paths:
            parts = split_categories(path)
            out.append(parts[level] if parts and -len(parts) <= level < len(parts) else "")
        return np.asarray(out, dtype=object)

    def item_popularity(self) -> np.ndarray:
        return np.bincount(self.events.items, minlength=self.n_items)

    def stats(self) -> dict[str, float | int | str]:
        lengths = self.events.lengths
        pop = self.item_popularity()
        stats: dict[str, float | int | str] = {
            "items": self.n_items,
            "users": self.n_users,
            "interactions": self.events.n_events,
            "items_without_events": int((pop == 0).sum()),
            "density": self.events.n_events / max(1, self.n_items * self.n_users),
            "events_per_user_median": float(np.median(lengths)) if len(lengths) else 0.0,
            "events_per_user_min": int(lengths.min()) if len(lengths) else 0,
            "events_per_user_max": int(lengths.max()) if len(lengths) else 0,
            "empty_descriptions": int((self.items["description"].fillna("") == "").sum()),
        }
        if self.timestamps is not None:
            ts = pd.to_datetime(self.timestamps)
            stats["first_event"] = str(ts.min())
            stats["last_event"] = str(ts.max())
        if self.queries is not None:
            stats["queries"] = len(self.queries)
            stats["distinct_queries"] = int(self.queries["query"].nunique())
        types, counts = np.unique(self.event_types.astype(str), return_counts=True)
        for t, c in zip(types, counts):
            stats[f"events_{t}"] = int(c)
        return stats


def item_texts(items: pd.DataFrame, fields: tuple[str, ...] = DEFAULT_TEXT_FIELDS) -> list[str]:
    """One text per catalog row: its ``fields`` joined, empty ones skipped. Training encodes a
    dataset's items with it and serving the rows it is sent, so both see the same text."""
    columns = [items[f].fillna("").astype(str) for f in fields if f in items]
    return [". ".join(p for p in parts if p) for parts in zip(*columns)]
