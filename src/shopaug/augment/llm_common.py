"""What the LLM strategies share: how they get a generator, how catalog rows become prompt fields,
and one batch runner that reports progress and what the batch cost (a :class:`~shopaug.llm.Usage`,
the record every LLM report is made of).

A strategy names its backend (``generator="local"`` plus ``generator_params``) instead of holding
one, so that a plan, a config file and ``--aug-param llm-cold.generator=fake`` describe it as
plain data. The generator is built on first use and shared by every strategy of the process that
names the same backend and parameters: the local model is loaded once, not once per strategy and
seed. Tests (and callers holding a configured generator) hand one in with :meth:`LLMOptions.bind`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from shopaug.augment.context import ProgressHook
from shopaug.llm import (
    GenerationRequest,
    Generator,
    PromptTemplate,
    Result,
    Usage,
    make_generator,
)

_shared: dict[str, Generator] = {}
_shared_lock = threading.Lock()


def shared_generator(name: str, params: dict[str, Any]) -> Generator:
    """One generator per (backend, parameters) in this process, built on first request."""
    key = json.dumps([name, params], sort_keys=True, default=str)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = make_generator(name, **params)
        return _shared[key]


class LLMOptions(BaseModel):
    """Fields every LLM strategy has: which backend, how many requests in flight, how much work."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generator: str = Field("local", description="Backend: local, openai or fake.")
    generator_params: dict[str, Any] = Field(
        default_factory=dict, description="Backend parameters (base_url, model, n_threads, ...)."
    )
    concurrency: int = Field(1, ge=1, description="Requests in flight at once.")
    limit: int | None = Field(None, ge=0, description="Most items (or users) to send; None: all.")
    offset: int = Field(
        0,
        ge=0,
        description="Items (or users) to skip before ``limit`` counts: windows of one long run "
        "for several processes or machines, which share the response cache.",
    )

    _bound: Generator | None = PrivateAttr(None)

    def bind(self, generator: Generator) -> Self:
        """Use ``generator`` instead of building one from ``generator``/``generator_params``."""
        self._bound = generator
        return self

    def llm(self) -> Generator:
        if self._bound is None:
            self._bound = shared_generator(self.generator, self.generator_params)
        return self._bound

    def window(self, chosen: np.ndarray) -> np.ndarray:
        return window(chosen, self.offset, self.limit)


def window(chosen: np.ndarray, offset: int = 0, limit: int | None = None) -> np.ndarray:
    """The ``limit`` entries of ``chosen`` after the first ``offset`` (all of them: ``None``)."""
    return chosen[offset : None if limit is None else offset + limit]


def provenance(generator: Generator, template: PromptTemplate) -> str:
    """``backend(model) name@vN``: the ``generator`` recorded with every LLM-made sample."""
    return f"{generator.describe()} {template.tag}"


# ----------------------------------------------------------------------------------------------
# Prompt fields from the catalog
# ----------------------------------------------------------------------------------------------


def item_fields(catalog: pd.DataFrame, item: int) -> dict[str, str]:
    """Title, brand, category path and description of ``item``, as the templates name them."""
    row = catalog.iloc[int(item)]

    def text(column: str) -> str:
        value = row.get(column, "")
        return "" if value is None or pd.isna(value) else str(value).strip()

    return {
        "title": text("title"),
        "brand": text("brand"),
        "category": text("categories"),
        "description": text("description"),
    }


def history_text(catalog: pd.DataFrame, items: Sequence[int]) -> str:
    """Titles as the ``- title`` lines the few-shot examples use (with their trailing newline)."""
    titles = [item_fields(catalog, i)["title"] for i in items]
    return "".join(f"- {t}\n" for t in titles if t)


# ----------------------------------------------------------------------------------------------
# Batches with progress and cost
# ----------------------------------------------------------------------------------------------


def run_batch(
    generator: Generator,
    requests: Sequence[GenerationRequest],
    label: str,
    concurrency: int = 1,
    progress: ProgressHook | None = None,
) -> tuple[list[Result], Usage]:
    """All ``requests`` (results in order) and what they cost (the generator's usage during the
    batch); ``progress`` sees ``label`` and a :class:`~shopaug.llm.BatchProgress` after each one."""
    before = generator.usage
    on_progress = None if progress is None else (lambda p: progress(label, p))
    results = generator.complete_many(requests, concurrency=concurrency, on_progress=on_progress)
    return results, generator.usage - before
