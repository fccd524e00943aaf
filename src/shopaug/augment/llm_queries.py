"""Synthetic search queries per item (doc2query / InPars), with variants and a round-trip filter.

A shop's query log covers the items people already find; new and long-tail items have no queries
at all. An LLM reads an item's title, brand, category and description and writes the queries a
shopper would type for it; each of those gets variants a real log is full of (a paraphrase, a
shorter form, a misspelling). Many generated queries are too vague to be about their item, so
every one goes through a round trip: keyword search (BM25 over the whole catalog) must rank its
item in the top ``k``, else it is removed. The kept ones are scored by reciprocal rank.

Queries are text, not training rows, so they are a table of their own (:class:`QuerySamples`)
with the same provenance: origin, the query a variant came from, score, generator and prompt, and
:class:`LLMQueries` is a :class:`~shopaug.augment.llm_products.TextProduct`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shopaug.augment.context import ProgressHook
from shopaug.augment.llm_common import item_fields, provenance, run_batch
from shopaug.augment.llm_products import TextProduct, TextRun, TextSource, as_source, write_parquet
from shopaug.llm import PromptTemplate, Result, Usage, load_prompt

#: Columns of ``queries.parquet``. ``kind`` is "query" for the LLM's own queries, else the variant;
#: ``rank`` is the item's BM25 rank for the query (0: not in the top k); ``kept`` the filter's verdict.
QUERY_COLUMNS = (
    "query",
    "item",
    "origin",
    "kind",
    "source_query",
    "score",
    "rank",
    "kept",
    "generator",
    "prompt",
)
VARIANT_KINDS = ("paraphrase", "shorter", "misspelt")
_DTYPES = {"item": "int64", "score": "float32", "rank": "int64", "kept": "bool"}


@dataclass(frozen=True)
class QuerySamples:
    """Generated queries with provenance, kept and removed alike (``kept`` tells which)."""

    frame: pd.DataFrame

    def __post_init__(self) -> None:
        missing = [c for c in QUERY_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"not a query table: missing columns {missing}")

    @classmethod
    def build(cls, records: Sequence[dict[str, Any]]) -> QuerySamples:
        """Rows from records with query, item, origin, kind, source_query, generator, prompt;
        score 1 and kept until a filter says otherwise."""
        defaults = {"score": 1.0, "rank": 0, "kept": True}
        rows = [{**defaults, **record} for record in records]
        return cls(pd.DataFrame(rows, columns=list(QUERY_COLUMNS)).astype(_DTYPES))

    def __len__(self) -> int:
        return len(self.frame)

    def kept(self) -> QuerySamples:
        return QuerySamples(self.frame[self.frame["kept"]].reset_index(drop=True))

    def counts(self) -> dict[str, dict[str, int]]:
        """Kept and removed queries by kind."""
        table = self.frame.groupby(["kind", "kept"]).size()
        kinds = sorted(set(self.frame["kind"]))
        return {
            kind: {
                "kept": int(table.get((kind, True), 0)),
                "removed": int(table.get((kind, False), 0)),
            }
            for kind in kinds
        }

    def write(self, path: str | Path) -> Path:
        """Write as Parquet (atomically, like the samples file)."""
        return write_parquet(self.frame, path)

    @classmethod
    def read(cls, path: str | Path) -> QuerySamples:
        return cls(pd.read_parquet(path).astype(_DTYPES))


def concat_queries(parts: Sequence[QuerySamples]) -> QuerySamples:
    frames = [p.frame for p in parts if len(p)]
    if not frames:
        return QuerySamples.build([])
    return QuerySamples(pd.concat(frames, ignore_index=True))


# ----------------------------------------------------------------------------------------------
# Round trip: does keyword search over the catalog find the query's item?
# ----------------------------------------------------------------------------------------------


def catalog_texts(catalog: pd.DataFrame) -> list[str]:
    """Title, brand, categories and description of each item, the text keyword search indexes."""
    fields = [item_fields(catalog, i) for i in range(len(catalog))]
    keys = ("title", "brand", "category", "description")
    return [" ".join(f[k] for k in keys if f[k]) for f in fields]


class CatalogSearch:
    """BM25 (``bm25s``) over the catalog's text; item i is document i."""

    def __init__(self, texts: Sequence[str]) -> None:
        import bm25s

        self._bm25s = bm25s
        self.n_items = len(texts)
        self.index = bm25s.BM25()
        self.index.index(self._tokens(texts), show_progress=False)

    def _tokens(self, texts: Sequence[str]) -> Any:
        return self._bm25s.tokenize(list(texts), show_progress=False)

    def ranks(self, queries: Sequence[str], items: Sequence[int], k: int) -> np.ndarray:
        """The 1-based rank of ``items[j]`` among the top ``k`` for ``queries[j]``; 0 when it is
        not there (documents with score 0 match no query word and are never "found")."""
        if not len(queries):
            return np.zeros(0, dtype=np.int64)
        words = self._bm25s.tokenize(list(queries), return_ids=False, show_progress=False)
        k = min(k, self.n_items)
        docs, scores = self.index.retrieve(words, k=k, show_progress=False, n_threads=1)
        hit = (docs == np.asarray(items)[:, None]) & (scores > 0)
        return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0).astype(np.int64)


class RoundTripFilter(BaseModel):
    """Keep a query only if BM25 over the catalog ranks its item in the top ``k``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(10, ge=1, description="How deep the item may be ranked and still be found.")

    def apply(self, samples: QuerySamples, search: CatalogSearch) -> QuerySamples:
        """The same queries with ``rank``, ``kept`` and ``score`` (1/rank; 0 if removed) set."""
        frame = samples.frame
        rank = search.ranks(frame["query"].tolist(), frame["item"].to_numpy(), self.k)
        score = np.divide(1.0, rank, out=np.zeros(len(rank)), where=rank > 0)
        return QuerySamples(frame.assign(rank=rank, kept=rank > 0, score=score.astype(np.float32)))


# ----------------------------------------------------------------------------------------------
# The strategy
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryRun(TextRun):
    """All generated queries (kept and removed; ``table`` is a :class:`QuerySamples` frame),
    what generating them cost, and how many repeated queries were dropped."""

    duplicates: int = 0

    @property
    def samples(self) -> QuerySamples:
        return QuerySamples(self.table)

    def report(self) -> dict[str, Any]:
        samples = self.samples
        kept = int(samples.frame["kept"].sum())
        return {
            "queries": len(samples),
            "kept": kept,
            "removed": len(samples) - kept,
            "kept_fraction": kept / len(samples) if len(samples) else 0.0,
            "duplicates_dropped": self.duplicates,
            "by_kind": samples.counts(),
            **self.cost.as_dict(),
        }


def normalise(query: str) -> str:
    return " ".join(query.lower().split())


class LLMQueries(TextProduct):
    """Queries per item with variants, round-trip filtered (see the module docstring)."""

    name: ClassVar[str] = "llm-queries"
    file: ClassVar[str] = "queries.parquet"
    variants: bool = Field(True, description="Also ask for paraphrase/shorter/misspelt variants.")
    variant_queries: int = Field(
        1, ge=0, description="Kept queries per item that get variants (each costs one call)."
    )
    k: int = Field(10, ge=1, description="Round-trip filter depth.")
    prompt: str = Field("item_queries", description="Prompt template of the queries.")
    variants_prompt: str = Field("query_variants", description="Prompt template of variants.")

    def generate(
        self, source: TextSource | pd.DataFrame, progress: ProgressHook | None = None
    ) -> QueryRun:
        """Queries for the catalog's items, windowed by ``offset`` and ``limit``."""
        catalog = as_source(source).catalog
        chosen = self.window(np.arange(len(catalog)))
        search = CatalogSearch(catalog_texts(catalog))
        check = RoundTripFilter(k=self.k)
        template = load_prompt(self.prompt)
        requests = [template.request(item_fields(catalog, i)) for i in chosen]
        results, cost = run_batch(
            self.llm(), requests, f"{self.name}: {len(chosen)} items", self.concurrency, progress
        )
        queries, dropped = self._dedupe(self._originals(chosen, results, template))
        queries = check.apply(queries, search)
        if self.variants and self.variant_queries > 0:
            variants, variant_cost = self._variants(queries, progress)
            variants, dropped_variants = self._dedupe(variants, seen=queries)
            queries = concat_queries([queries, check.apply(variants, search)])
            cost, dropped = cost + variant_cost, dropped + dropped_variants
        return QueryRun(queries.frame, cost, self.file, dropped)

    def _originals(
        self, items: np.ndarray, results: Sequence[Result], template: PromptTemplate
    ) -> QuerySamples:
        generator = provenance(self.llm(), template)
        return QuerySamples.build(
            [
                {
                    "query": normalise(query),
                    "item": int(item),
                    "origin": "llm-query",
                    "kind": "query",
                    "source_query": "",
                    "generator": generator,
                    "prompt": template.tag,
                }
                for item, result in zip(items, results, strict=True)
                if result.ok
                for query in result.parsed["queries"]
                if normalise(query)
            ]
        )

    def _variants(
        self, queries: QuerySamples, progress: ProgressHook | None
    ) -> tuple[QuerySamples, Usage]:
        """Variants of the first ``variant_queries`` kept queries of every item."""
        template = load_prompt(self.variants_prompt)
        frame = queries.frame
        sources = frame[frame["kept"]].groupby("item", sort=False).head(self.variant_queries)
        requests = [template.request({"query": q}) for q in sources["query"]]
        results, cost = run_batch(
            self.llm(),
            requests,
            f"{self.name}: {len(requests)} variants",
            self.concurrency,
            progress,
        )
        generator = provenance(self.llm(), template)
        records = [
            {
                "query": normalise(result.parsed[kind]),
                "item": int(item),
                "origin": "llm-query-variant",
                "kind": kind,
                "source_query": source,
                "generator": generator,
                "prompt": template.tag,
            }
            for item, source, result in zip(sources["item"], sources["query"], results, strict=True)
            if result.ok
            for kind in VARIANT_KINDS
            if normalise(result.parsed[kind])
        ]
        return QuerySamples.build(records), cost

    @staticmethod
    def _dedupe(
        queries: QuerySamples, seen: QuerySamples | None = None
    ) -> tuple[QuerySamples, int]:
        """Drop a query repeated for the same item (within ``queries`` or already in ``seen``)."""
        frame = queries.frame
        repeated = frame.duplicated(["item", "query"])
        if seen is not None and len(seen):
            known = set(zip(seen.frame["item"], seen.frame["query"], strict=True))
            pairs = zip(frame["item"], frame["query"], strict=True)
            repeated |= np.fromiter((p in known for p in pairs), dtype=bool, count=len(frame))
        return QuerySamples(frame[~repeated].reset_index(drop=True)), int(repeated.sum())
