"""Synthetic (query, item) pairs for training the bi-encoder when a shop has few or no queries.

Two sources. :class:`TemplateQueries` is the cheap default: queries cut from an item's own
fields (its leaf category, brand plus category, short spans of the title), the way shoppers
type a product type, a brand, or a few words they remember. It needs no model and covers the
whole catalog in a second, but it can only say what the item's text already says. The LLM
source (:class:`~shopaug.augment.llm_queries.LLMQueries`, round-trip filtered) writes the
queries a shopper would type, including words the item text lacks; it is slow on CPU (seconds
per item with the local model), so it is usually run on a subset or ahead of time.

Both return the same frame: ``query, item_id, source``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shopaug.data.schema import split_categories

PAIR_COLUMNS = ("query", "item_id", "source")


class TemplateQueries(BaseModel):
    """Up to ``per_item`` distinct queries per item, built from its fields (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_item: int = Field(3, ge=1, description="Queries per item (fewer if its text is short).")
    max_span: int = Field(3, ge=1, description="Most title words in a title-span query.")
    seed: int = 0

    def generate(self, catalog: pd.DataFrame) -> pd.DataFrame:
        """Pairs for every row of ``catalog`` (item_id, title, brand, categories)."""
        rng = np.random.default_rng(self.seed)
        rows = []
        for item_id, title, brand, path in zip(
            catalog["item_id"].astype(str),
            _text(catalog, "title"),
            _text(catalog, "brand"),
            _text(catalog, "categories"),
            strict=True,
        ):
            candidates = self._candidates(title, brand, path, rng)
            picked = rng.permutation(len(candidates))[: self.per_item]
            rows += [(candidates[i], item_id, "template") for i in sorted(picked)]
        return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))

    def _candidates(self, title: str, brand: str, path: str, rng: np.random.Generator) -> list[str]:
        leaf = (split_categories(path) or [""])[-1].lower()
        brand = brand.lower()
        words = [w for w in title.lower().replace(",", " ").split() if w != brand]
        out = [leaf, f"{brand} {leaf}".strip()]
        if words:
            size = int(rng.integers(1, min(self.max_span, len(words)) + 1))
            start = int(rng.integers(0, len(words) - size + 1))
            out.append(" ".join(words[start : start + size]))
            modifier = [w for w in words if w not in leaf.split()]
            if modifier and leaf:
                out.append(f"{modifier[int(rng.integers(0, len(modifier)))]} {leaf}")
        return list(dict.fromkeys(q.strip() for q in out if q.strip()))


def llm_queries(
    catalog: pd.DataFrame,
    limit: int | None = None,
    generator: str = "local",
    generator_params: dict | None = None,
    progress: Callable | None = None,
) -> pd.DataFrame:
    """Round-trip-filtered LLM queries for the first ``limit`` items (all if None), as pairs."""
    from shopaug.augment.llm_queries import LLMQueries

    strategy = LLMQueries(generator=generator, generator_params=generator_params or {}, limit=limit)
    text = catalog.reset_index(drop=True)
    kept = strategy.generate(text, progress=progress).samples.kept().frame
    ids = text["item_id"].astype(str).to_numpy()
    return pd.DataFrame(
        {"query": kept["query"], "item_id": ids[kept["item"].to_numpy()], "source": "llm"}
    )


def _text(frame: pd.DataFrame, column: str) -> list[str]:
    if column not in frame:
        return [""] * len(frame)
    return frame[column].fillna("").astype(str).tolist()
