"""LLM-written text about items and users: descriptions where the catalog has none, and short
intent profiles of users from the titles in their history.

Both feed text, not training rows, to later stages. An item without a description is placed by the
text encoder on its title alone, and every text-based strategy and model inherits that; a
description written from title, brand and category gives it more to go on (the enricher only
fills empty descriptions, it never rewrites a seller's). A profile condenses a history into the
kind of sentence a content-aware recommender or a personalised search can match item text with;
nothing in shopaug reads ``profiles.parquet`` yet, it is written for such a consumer.

Both are :class:`~shopaug.augment.llm_products.TextProduct` s: ``generate(source, progress)``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field

from shopaug.augment.context import ProgressHook
from shopaug.augment.enrich import register_enricher
from shopaug.augment.llm_common import history_text, item_fields, provenance, run_batch, window
from shopaug.augment.llm_products import TextProduct, TextRun, TextSource, as_source
from shopaug.data.sequences import Sequences
from shopaug.llm import Generator, load_prompt

#: Columns of the tables written by the text products.
DESCRIPTION_COLUMNS = ("item", "description", "generator", "prompt")
PROFILE_COLUMNS = ("row", "user", "user_index", "profile", "generator", "prompt")


def empty_descriptions(catalog: pd.DataFrame) -> np.ndarray:
    """Items whose description is missing or blank."""
    text = catalog["description"] if "description" in catalog else pd.Series([""] * len(catalog))
    blank = text.fillna("").astype(str).str.strip() == ""
    return np.flatnonzero(blank.to_numpy())


class LLMDescriptions(TextProduct):
    """Writes a description for every item whose description is empty (see the module
    docstring); a seller's description is never rewritten."""

    name: ClassVar[str] = "llm-describe"
    file: ClassVar[str] = "descriptions.parquet"
    prompt: str = Field("describe_item", description="Prompt template name.")

    def generate(
        self, source: TextSource | pd.DataFrame, progress: ProgressHook | None = None
    ) -> TextRun:
        """A description for each of the (windowed) items without one."""
        catalog = as_source(source).catalog
        template = load_prompt(self.prompt)
        llm = self.llm()
        items = self.window(empty_descriptions(catalog))
        requests = [template.request(item_fields(catalog, i)) for i in items]
        results, cost = run_batch(
            llm, requests, f"{self.name}: {len(items)} items", self.concurrency, progress
        )
        written = [(int(i), r.text.strip()) for i, r in zip(items, results, strict=True) if r.ok]
        written = [(i, text) for i, text in written if text]
        table = pd.DataFrame(
            {
                "item": [i for i, _ in written],
                "description": [text for _, text in written],
                "generator": provenance(llm, template),
                "prompt": template.tag,
            },
            columns=list(DESCRIPTION_COLUMNS),
        )
        return TextRun(table, cost, self.file)


@register_enricher("llm-describe")
class LLMDescriptionEnricher(LLMDescriptions):
    """:class:`LLMDescriptions` as a :class:`~shopaug.augment.enrich.TextEnricher` of one
    catalog: it appends the written description to the text of the items without one (the
    encoder's text is the fields joined, so this is the text the item would have had with a
    description) and leaves every other item alone."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    catalog: pd.DataFrame = Field(description="Item fields; row i is item i.")

    def enrich(self, texts: list[str]) -> list[str | None]:
        if len(texts) != len(self.catalog):
            raise ValueError(f"{len(texts)} texts for a catalog of {len(self.catalog)} items")
        out: list[str | None] = [None] * len(texts)
        written = self.generate(self.catalog).table[["item", "description"]]
        for item, description in written.itertuples(index=False):
            out[item] = ". ".join(part for part in (texts[item], description) if part)
        return out


def user_profiles(
    train: Sequences,
    catalog: pd.DataFrame,
    generator: Generator,
    *,
    history: int = 10,
    limit: int | None = None,
    offset: int = 0,
    user_index: np.ndarray | None = None,
    concurrency: int = 1,
    progress: ProgressHook | None = None,
) -> TextRun:
    """A short intent profile of each (non-empty) training row from its last ``history`` titles.

    Rows come from the training split only, so a profile never mentions a held-out target.
    ``user_index`` (``TrainData.user_index``) maps rows to the dataset's user table.
    """
    template = load_prompt("user_profile")
    rows = window(np.flatnonzero(train.lengths > 0), offset, limit)
    requests = [
        template.request({"history": history_text(catalog, train.row(r)[-history:].tolist())})
        for r in rows
    ]
    results, cost = run_batch(
        generator, requests, f"{UserProfiles.name}: {len(rows)} users", concurrency, progress
    )
    done = np.asarray([r.ok for r in results], dtype=bool)
    kept = rows[done]
    index = np.arange(len(train)) if user_index is None else np.asarray(user_index)
    table = pd.DataFrame(
        {
            "row": kept,
            "user": train.users[kept],
            "user_index": index[kept],
            "profile": [r.parsed["profile"] for r in results if r.ok],
            "generator": provenance(generator, template),
            "prompt": template.tag,
        },
        columns=list(PROFILE_COLUMNS),
    )
    return TextRun(table, cost, UserProfiles.file)


class UserProfiles(TextProduct):
    """:func:`user_profiles` as a configured product (backend, history length, window)."""

    name: ClassVar[str] = "llm-profiles"
    file: ClassVar[str] = "profiles.parquet"
    history: int = Field(10, ge=1, le=50, description="Last titles of a user shown to the model.")

    def generate(
        self, source: TextSource | pd.DataFrame, progress: ProgressHook | None = None
    ) -> TextRun:
        source = as_source(source)
        return user_profiles(
            source.require_train(self.name),
            source.catalog,
            self.llm(),
            history=self.history,
            limit=self.limit,
            offset=self.offset,
            user_index=source.user_index,
            concurrency=self.concurrency,
            progress=progress,
        )
