"""Stage 4: strategies that grow new training samples from real ones, with provenance.

Strategies are registered by name in :data:`STRATEGIES`; :func:`make_strategy` builds one from a
name and parameters (as a config file or ``--augment crop,substitute`` gives them), and
:func:`generate` runs several over one :class:`AugmentContext`, timing each. The LLM text products
(queries, profiles, descriptions: text, not rows) are registered the same way in
:data:`TEXT_PRODUCTS` and built with :func:`make_text_product`; each is a :class:`TextProduct`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopaug.augment.base import Strategy
from shopaug.augment.cold import ColdNeighbours
from shopaug.augment.context import AugmentContext, Neighbours
from shopaug.augment.enrich import ENRICHERS, TextEnricher, enrich_texts, register_enricher
from shopaug.augment.llm_cold import LLMColdJudge
from shopaug.augment.llm_expand import ExpansionFilter, LLMExpansions, expanded_texts
from shopaug.augment.llm_products import TextProduct, TextRun, TextSource
from shopaug.augment.llm_queries import LLMQueries, QuerySamples, RoundTripFilter
from shopaug.augment.llm_text import (
    LLMDescriptionEnricher,
    LLMDescriptions,
    UserProfiles,
    user_profiles,
)
from shopaug.augment.negatives import HardNegativeMiner, HardNegatives
from shopaug.augment.samples import GeneratedSequences, concat, mix
from shopaug.augment.sequence import Crop, Insert, Mask, Reorder, Substitute
from shopaug.registry import build

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Crop, Mask, Reorder, Substitute, Insert, ColdNeighbours, LLMColdJudge)
}


TEXT_PRODUCTS: dict[str, type[TextProduct]] = {
    cls.name: cls for cls in (LLMQueries, UserProfiles, LLMDescriptions, LLMExpansions)
}


def make_strategy(name: str, **params: Any) -> Strategy:
    """A strategy by registered name; unknown names and bad parameters fail with their name."""
    return build(STRATEGIES, "strategies", name, **params)


def make_text_product(name: str, **params: Any) -> TextProduct:
    """A text product by registered name, failing like :func:`make_strategy`."""
    return build(TEXT_PRODUCTS, "text products", name, **params)


@dataclass(frozen=True)
class StrategyRun:
    """One strategy's output size and speed, and what else it reported (LLM calls, failures)."""

    name: str
    samples: int
    events: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("inf")

    @classmethod
    def combine(cls, name: str, runs: Sequence[StrategyRun]) -> StrategyRun:
        """One strategy's runs on several user shards as one: sizes and times add up.

        A report (an LLM strategy's calls, tokens, answers) describes its own shard; summing them
        would double what every shard shares (the cold items), so several stay a list.
        """
        reported = [r.details for r in runs if r.details]
        details = reported[0] if len(reported) == 1 else ({"shards": reported} if reported else {})
        total = (sum(r.samples for r in runs), sum(r.events for r in runs))
        return cls(name, *total, sum(r.seconds for r in runs), details)


def generate(
    strategies: Sequence[Strategy],
    context: AugmentContext,
    on_strategy: Callable[[StrategyRun], None] | None = None,
) -> tuple[GeneratedSequences, list[StrategyRun]]:
    """All strategies' samples (in order) and a timing record for each."""
    outputs, runs = [], []
    for strategy in strategies:
        started = time.perf_counter()
        samples = strategy.generate(context)
        run = StrategyRun(
            strategy.name,
            len(samples),
            samples.n_events,
            time.perf_counter() - started,
            context.reports.pop(strategy.name, {}),
        )
        outputs.append(samples)
        runs.append(run)
        if on_strategy:
            on_strategy(run)
    return concat(outputs), runs


__all__ = [
    "ENRICHERS",
    "STRATEGIES",
    "TEXT_PRODUCTS",
    "AugmentContext",
    "ColdNeighbours",
    "Crop",
    "ExpansionFilter",
    "GeneratedSequences",
    "HardNegativeMiner",
    "HardNegatives",
    "Insert",
    "LLMColdJudge",
    "LLMDescriptionEnricher",
    "LLMDescriptions",
    "LLMExpansions",
    "LLMQueries",
    "Mask",
    "Neighbours",
    "QuerySamples",
    "Reorder",
    "RoundTripFilter",
    "Strategy",
    "StrategyRun",
    "Substitute",
    "TextEnricher",
    "TextProduct",
    "TextRun",
    "TextSource",
    "UserProfiles",
    "concat",
    "enrich_texts",
    "expanded_texts",
    "generate",
    "make_strategy",
    "make_text_product",
    "mix",
    "register_enricher",
    "user_profiles",
]
