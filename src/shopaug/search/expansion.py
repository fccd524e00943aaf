"""Document expansion for keyword search: an item's synthetic queries appended to its document.

BM25 finds only the words an item's text contains, and catalog text is written by the seller,
not by the shopper ("hdpe bottle" for what people search as "plastic sample jar"). doc2query
(Nogueira et al., 2019) appends generated queries to each document so that keyword search sees
the shopper's words, and reweights the words that matter by repeating them; doc2query--
(Gospodinov et al., 2023) first removes the generated queries that are not about their document,
because those add noise that outweighs the gain. Here the filter is the round trip the query
generator already applies (:class:`~shopaug.augment.llm_queries.RoundTripFilter`): a query is
kept only when BM25 over the plain catalog ranks its item in the top ``k``.

The expansion text goes to a field of its own (``expansion``, weighted in
:class:`~shopaug.search.base.FieldWeights`), read by keyword search only: the dense encoder
embeds what the shop wrote, and an item without synthetic queries simply has an empty field.
"""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

#: Between the queries of one expansion text (a sentence break to the tokenizer).
SEPARATOR = ". "


def normalised(queries: pd.Series) -> pd.Series:
    """Queries lowercased with their whitespace collapsed: how expansion texts store them, and
    how a query is looked up in them."""
    return queries.astype(str).str.lower().str.split().str.join(" ")


class DocumentExpansion(BaseModel):
    """Append up to ``max_queries`` distinct kept queries per item to its ``expansion`` field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_queries: int = Field(
        10, ge=1, description="Queries appended per item; the rest are the generator's spares."
    )

    def texts(self, pairs: pd.DataFrame) -> pd.Series:
        """The expansion text of each item named in ``pairs`` (``query``, ``item_id`` and
        optionally ``kept``: rows the round trip removed are not used), indexed by item_id."""
        kept = pairs[pairs["kept"].astype(bool)] if "kept" in pairs else pairs
        queries = kept.assign(
            query=normalised(kept["query"]),
            item_id=kept["item_id"].astype(str),
        )
        queries = queries[queries["query"] != ""].drop_duplicates(["item_id", "query"])
        first = queries.groupby("item_id", sort=False).head(self.max_queries)
        return first.groupby("item_id", sort=False)["query"].agg(SEPARATOR.join)

    def apply(self, catalog: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
        """``catalog`` with its ``expansion`` column set from ``pairs`` (any text already there
        is kept in front); items the pairs do not name keep what they had."""
        added = catalog["item_id"].astype(str).map(self.texts(pairs)).fillna("")
        before = catalog["expansion"] if "expansion" in catalog else pd.Series([""] * len(catalog))
        joined = [
            SEPARATOR.join(part for part in (str(b).strip(), a) if part)
            for b, a in zip(before.fillna("").to_numpy(), added.to_numpy(), strict=True)
        ]
        return catalog.assign(expansion=joined)

    @staticmethod
    def pairs_of(catalog: pd.DataFrame) -> set[tuple[str, str]]:
        """Every (item_id, query) written into the catalog's expansion texts."""
        texts = catalog["expansion"].fillna("").astype(str).str.split(SEPARATOR, regex=False)
        ids = catalog["item_id"].astype(str)
        return {(item, q) for item, qs in zip(ids, texts, strict=True) for q in qs if q}

    @staticmethod
    def coverage(catalog: pd.DataFrame) -> dict[str, float]:
        """How much of the catalog is expanded: the report says it, since an expansion made for
        a subset favours that subset."""
        if "expansion" not in catalog or not len(catalog):
            return {"items_expanded": 0, "share_expanded": 0.0}
        expanded = int((catalog["expansion"].fillna("").astype(str) != "").sum())
        return {"items_expanded": expanded, "share_expanded": expanded / len(catalog)}
