"""Item text expansion: the words shoppers use for an item that its catalog text lacks.

A seller titles a product by part number and specification ("HDPE 2125-0500 500 mL"); a shopper
thinks "plastic sample jar". Everything text-based in shopaug (the content recommender's item
tower, dense and keyword search) only sees what the seller wrote, and a new item has nothing else
to be placed by. An LLM reads the item's fields and writes short synonyms, uses and keywords
(``expand_item`` prompt); appended to the item's text they give the encoder and BM25 the
shopper's vocabulary (the document-expansion idea of doc2query, Nogueira et al., 2019, applied
to item text rather than queries).

Small models drift: a phrase may be about another product, or generic ("high quality"). Two
round-trip checks in the text encoder's space keep the expansion about its item:

1. a phrase is kept only when, among all catalog items, its item is one of the ``k`` nearest to
   the phrase (the phrase points at the item's part of the catalog);
2. the item's text with its kept phrases appended must keep at least ``min_overlap`` of its
   ``neighbours`` nearest items (the expansion adds words, it does not move the item elsewhere);
   otherwise the whole expansion is dropped.

Only the catalog's fields reach the prompt; which items are expanded may depend on the training
rows (``max_train_events``: items with few or no interactions, which need it most), never on
validation or test rows. The table keeps removed phrases with the reason (``kept`` says which);
:func:`expanded_texts` appends the kept ones to the item texts that the content model encodes,
and ``shopaug bench search --expansion-file`` reads the same file as (phrase, item) training
pairs for the search models, like LLM-written queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shopaug.augment.context import ProgressHook
from shopaug.augment.llm_common import item_fields, provenance, run_batch
from shopaug.augment.llm_products import TextProduct, TextRun, TextSource, as_source
from shopaug.data.dataset import item_texts
from shopaug.data.errors import DataError
from shopaug.llm import Result, load_prompt

#: Columns of ``expansions.parquet``: one row per phrase the model wrote. ``kind`` is the list it
#: came from (synonyms, uses, keywords); ``rank`` the item's rank among all items for the phrase;
#: ``overlap`` the share of the item's neighbours its expanded text kept; ``reason`` why a
#: removed phrase was removed ("" when kept).
EXPANSION_COLUMNS = (
    "item",
    "phrase",
    "kind",
    "rank",
    "overlap",
    "kept",
    "reason",
    "origin",
    "generator",
    "prompt",
)
PHRASE_KINDS = ("synonyms", "uses", "keywords")
#: Between an item's text and its expansion, and between phrases: a sentence break to tokenizers.
SEPARATOR = ". "

Encode = Callable[[list[str]], np.ndarray]


class ExpansionFilter(BaseModel):
    """The two round-trip checks of the module docstring, in one text encoder's space."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(50, ge=1, description="A phrase must rank its item among this many items.")
    neighbours: int = Field(10, ge=1, description="Nearest items compared before and after.")
    min_overlap: float = Field(
        0.5, ge=0, le=1, description="Share of the neighbours the expanded text must keep."
    )

    def apply(self, phrases: pd.DataFrame, texts: Sequence[str], encode: Encode) -> pd.DataFrame:
        """``phrases`` (item, phrase, ...) with ``rank``, ``overlap``, ``kept`` and ``reason``
        set; ``texts`` are every catalog item's own texts (row i is item i)."""
        out = phrases.copy()
        if out.empty:
            return out.assign(rank=0, overlap=0.0, kept=False, reason="")
        catalog = encode(list(texts))
        ranks = self._ranks(encode(out["phrase"].tolist()), catalog, out["item"].to_numpy())
        out["rank"] = ranks
        out["kept"] = ranks <= self.k
        out["reason"] = np.where(out["kept"], "", f"item not in the phrase's top {self.k}")
        out["overlap"] = 0.0
        kept = out[out["kept"]]
        if kept.empty:
            return out
        items = kept["item"].unique()
        with_phrases = expanded_texts(texts, kept)  # the very text the content model will encode
        expanded = encode([with_phrases[i] for i in items])
        overlaps = dict(zip(items, self._overlaps(catalog, expanded, items), strict=True))
        out["overlap"] = out["item"].map(overlaps).fillna(0.0).astype("float32")
        moved = out["kept"] & (out["overlap"] < self.min_overlap)
        out.loc[moved, "kept"] = False
        out.loc[moved, "reason"] = f"expanded text kept under {self.min_overlap:.0%} of neighbours"
        return out

    @staticmethod
    def _ranks(phrase_vectors: np.ndarray, catalog: np.ndarray, items: np.ndarray) -> np.ndarray:
        """1 + the number of items closer to each phrase than its own item."""
        scores = phrase_vectors @ catalog.T
        own = scores[np.arange(len(items)), items]
        return 1 + (scores > own[:, None]).sum(axis=1)

    def _overlaps(
        self, catalog: np.ndarray, expanded: np.ndarray, items: np.ndarray
    ) -> list[float]:
        n = min(self.neighbours, len(catalog) - 1)
        if n <= 0:
            return [1.0] * len(items)
        before = catalog[items] @ catalog.T
        after = expanded @ catalog.T
        rows = np.arange(len(items))
        before[rows, items] = after[rows, items] = -np.inf  # an item is not its own neighbour
        near_before = np.argpartition(-before, n - 1, axis=1)[:, :n]
        near_after = np.argpartition(-after, n - 1, axis=1)[:, :n]
        return [
            len(set(b.tolist()) & set(a.tolist())) / n
            for b, a in zip(near_before, near_after, strict=True)
        ]


class LLMExpansions(TextProduct):
    """Synonyms, uses and keywords per item, filtered by :class:`ExpansionFilter` (module
    docstring). Items go emptiest first: by training events (when the source has training rows),
    then by catalog order, so ``limit`` spends the calls on the items that need them most."""

    name: ClassVar[str] = "llm-expand"
    file: ClassVar[str] = "expansions.parquet"
    prompt: str = Field("expand_item", description="Prompt template name.")
    max_train_events: int | None = Field(
        None,
        ge=0,
        description="Expand only items with at most this many training events (0: cold items); "
        "None: every item.",
    )
    filter: ExpansionFilter = ExpansionFilter()
    encoder: str | None = Field(None, description="Text encoder of the round trip; default MiniLM.")

    def generate(
        self,
        source: TextSource | pd.DataFrame,
        progress: ProgressHook | None = None,
        encode: Encode | None = None,
    ) -> TextRun:
        """The expansion table of the chosen (windowed) items; ``encode`` replaces the text
        encoder of the round trip (tests)."""
        source = as_source(source)
        items = self.window(self.chosen_items(source))
        template = load_prompt(self.prompt)
        llm = self.llm()
        requests = [template.request(item_fields(source.catalog, i)) for i in items]
        results, cost = run_batch(
            llm, requests, f"{self.name}: {len(items)} items", self.concurrency, progress
        )
        phrases = phrase_rows(items, results).assign(
            origin=self.name, generator=provenance(llm, template), prompt=template.tag
        )
        texts = item_texts(source.catalog)
        checked = self.filter.apply(phrases, texts, encode or self._encoder())
        return TextRun(checked.reindex(columns=list(EXPANSION_COLUMNS)), cost, self.file)

    def chosen_items(self, source: TextSource) -> np.ndarray:
        n_items = len(source.catalog)
        if source.train is None:
            if self.max_train_events is not None:
                source.require_train(f"{self.name} with max_train_events")
            return np.arange(n_items)
        events = np.bincount(source.train.items, minlength=n_items)[:n_items]
        order = np.lexsort((np.arange(n_items), events))
        if self.max_train_events is None:
            return order
        return order[events[order] <= self.max_train_events]

    def _encoder(self) -> Encode:
        from shopaug.encode.text_encoder import TextEncoder

        return TextEncoder(self.encoder).encode


def phrase_rows(items: np.ndarray, results: Sequence[Result]) -> pd.DataFrame:
    """One row per distinct phrase of each answered item (lowercased, whitespace collapsed);
    a phrase already in an earlier list of the same item is not repeated."""
    rows = []
    for item, result in zip(items, results, strict=True):
        if not result.ok:
            continue
        seen: set[str] = set()
        for kind in PHRASE_KINDS:
            for phrase in result.parsed.get(kind, []):
                text = " ".join(str(phrase).lower().split())
                if text and text not in seen:
                    seen.add(text)
                    rows.append({"item": int(item), "phrase": text, "kind": kind})
    return pd.DataFrame(rows, columns=["item", "phrase", "kind"]).astype({"item": "int64"})


def read_expansions(path: Path, n_items: int) -> pd.DataFrame:
    """The kept phrases of an ``expansions.parquet`` made from a catalog of ``n_items`` items."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read an expansion table ({exc})") from exc
    missing = [c for c in ("item", "phrase", "kept") if c not in frame]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} of a `-s llm-expand` table")
    rows = frame["item"].to_numpy()
    outside = np.flatnonzero((rows < 0) | (rows >= n_items))
    if len(outside):
        raise DataError(
            f"{path} row {int(outside[0])}: item {int(rows[outside[0]])} is not a row of this "
            f"catalog ({n_items} items); was the file made from other data?"
        )
    return frame[frame["kept"].astype(bool)]


def expanded_texts(texts: Sequence[str], expansions: pd.DataFrame) -> list[str]:
    """``texts`` with each item's kept phrases appended; items without any are unchanged."""
    out = list(texts)
    for item, phrases in expansions.groupby("item", sort=True)["phrase"]:
        out[int(item)] = SEPARATOR.join(p for p in (out[int(item)], *phrases) if p)
    return out
