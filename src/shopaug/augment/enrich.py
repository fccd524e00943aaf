"""Hooks for strategies that rewrite item text before it is encoded.

An item whose description is empty, or whose title is a part number, is poorly placed by the text
encoder, and every text-based strategy inherits that. An enricher returns better text for some
items (``None`` keeps the original); enrichers are registered by name so that configuration files
can list them, and the generative-LLM strategies plug in here. Enrichment runs before encoding,
reads only the catalog, and records which items it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


class TextEnricher(Protocol):
    """Returns new text for each item, or ``None`` to keep it."""

    name: str

    def enrich(self, texts: Sequence[str]) -> list[str | None]: ...


#: Enricher factories by name; ``register_enricher`` adds one.
ENRICHERS: dict[str, Callable[..., TextEnricher]] = {}


def register_enricher(
    name: str,
) -> Callable[[Callable[..., TextEnricher]], Callable[..., TextEnricher]]:
    """Class decorator: make an enricher available to configs under ``name``."""

    def add(factory: Callable[..., TextEnricher]) -> Callable[..., TextEnricher]:
        if name in ENRICHERS:
            raise ValueError(f"an enricher named {name!r} is already registered")
        ENRICHERS[name] = factory
        return factory

    return add


@dataclass(frozen=True)
class Enrichment:
    """Texts after enrichment, and for each enricher the indices of the items it changed."""

    texts: list[str]
    changed: dict[str, list[int]]


def enrich_texts(texts: Sequence[str], enrichers: Sequence[TextEnricher]) -> Enrichment:
    """Apply ``enrichers`` in order; each sees the texts as the previous ones left them."""
    current = list(texts)
    changed: dict[str, list[int]] = {}
    for enricher in enrichers:
        proposals = enricher.enrich(current)
        if len(proposals) != len(current):
            raise ValueError(
                f"enricher {enricher.name!r} returned {len(proposals)} texts for "
                f"{len(current)} items"
            )
        changed[enricher.name] = [
            i for i, new in enumerate(proposals) if new is not None and new != current[i]
        ]
        for i in changed[enricher.name]:
            current[i] = proposals[i]  # type: ignore[assignment]
    return Enrichment(current, changed)
