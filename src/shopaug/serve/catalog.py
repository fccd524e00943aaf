"""Catalog upserts, shared by the live service and ``retrain`` so both build the same catalog.

A logged item is a whole catalog entry (see :class:`~shopaug.serve.schemas.Item`): a known id has
its item fields replaced in place (its index never moves; columns the API does not know, such as
``listed_at``, keep their values), a new id is appended. The rows are typed like a catalog
(``price`` float, text as text) and joined with one ``concat``, so pandas picks one dtype per
column for old and new values alike: assigning ``None`` into a float column row by row is a
``TypeError`` in pandas 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shopaug.serve.schemas import Item

ITEM_FIELDS = list(Item.model_fields)


@dataclass(frozen=True)
class CatalogChange:
    """The catalog after an upsert, and where its changed rows are.

    ``indices[i]`` is the catalog index of the i-th distinct item upserted; ``updated[i]`` says
    whether it replaced an existing item (new items come after the old catalog, in order).
    """

    catalog: pd.DataFrame
    indices: np.ndarray
    updated: np.ndarray

    @property
    def rows(self) -> pd.DataFrame:
        """The upserted items as whole catalog rows."""
        return self.catalog.iloc[self.indices]


def items_frame(items: Sequence[Item]) -> pd.DataFrame:
    """Validated items as catalog rows, one per id (the last one wins, as in log order)."""
    frame = pd.DataFrame([item.model_dump() for item in items], columns=ITEM_FIELDS)
    frame["price"] = frame["price"].astype("float64")
    return frame.drop_duplicates("item_id", keep="last").reset_index(drop=True)


def upsert_items(catalog: pd.DataFrame, items: Sequence[Item]) -> CatalogChange:
    """``catalog`` with ``items`` applied; ``catalog`` itself is left as it was."""
    rows = items_frame(items)
    catalog = catalog.reset_index(drop=True)
    position = pd.Index(catalog["item_id"].astype(str)).get_indexer(rows["item_id"])
    updated = position >= 0
    combined = pd.concat([catalog, rows], ignore_index=True)
    appended = np.arange(len(catalog), len(combined))
    for column in rows.columns:
        values = combined.loc[appended[updated], column].to_numpy()
        combined.loc[position[updated], column] = values
    combined = combined.drop(index=appended[updated]).reset_index(drop=True)
    indices = np.where(updated, position, len(catalog) + np.cumsum(~updated) - 1)
    return CatalogChange(combined, indices.astype(np.int64), updated)
