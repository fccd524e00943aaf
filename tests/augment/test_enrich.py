"""Text enrichers: the registry, and enrich_texts applying them in order with a record of changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from shopaug.augment import enrich
from shopaug.augment.enrich import Enrichment, enrich_texts, register_enricher


@dataclass
class FillEmpty:
    """Gives items without text a placeholder."""

    name: str = "fill-empty"

    def enrich(self, texts: Sequence[str]) -> list[str | None]:
        return [None if text else "unnamed item" for text in texts]


@dataclass
class Upper:
    """Upper-cases short texts; proposes the same text for texts already in upper case."""

    name: str = "upper"

    def enrich(self, texts: Sequence[str]) -> list[str | None]:
        return [text.upper() if len(text) < 13 else None for text in texts]


@pytest.fixture
def registry(monkeypatch) -> dict:
    """A fresh, empty registry for the duration of a test."""
    fresh: dict = {}
    monkeypatch.setattr(enrich, "ENRICHERS", fresh)
    return fresh


def test_register_enricher_adds_the_factory_by_name(registry) -> None:
    decorated = register_enricher("fill-empty")(FillEmpty)
    assert decorated is FillEmpty
    assert registry == {"fill-empty": FillEmpty}
    assert registry["fill-empty"]().enrich(["", "x"]) == ["unnamed item", None]


def test_a_name_can_be_registered_once(registry) -> None:
    register_enricher("upper")(Upper)
    with pytest.raises(ValueError, match="'upper' is already registered"):
        register_enricher("upper")(FillEmpty)
    assert registry["upper"] is Upper


def test_enrichers_apply_in_order_and_record_what_they_changed() -> None:
    texts = ["pipette", "", "GLOVES", "a very long description"]
    result = enrich_texts(texts, [FillEmpty(), Upper()])
    assert isinstance(result, Enrichment)
    # Upper sees the placeholder FillEmpty wrote; "GLOVES" stays the same and is not a change.
    assert result.texts == ["PIPETTE", "UNNAMED ITEM", "GLOVES", "a very long description"]
    assert result.changed == {"fill-empty": [1], "upper": [0, 1]}
    assert texts == ["pipette", "", "GLOVES", "a very long description"]  # input untouched


def test_the_order_of_enrichers_matters() -> None:
    result = enrich_texts(["", "ab"], [Upper(), FillEmpty()])
    assert result.texts == ["unnamed item", "AB"]
    assert result.changed == {"upper": [1], "fill-empty": [0]}


def test_no_enrichers_no_changes() -> None:
    assert enrich_texts(["a", "b"], []) == Enrichment(["a", "b"], {})


def test_an_enricher_returning_the_wrong_number_of_texts_is_named() -> None:
    @dataclass
    class Short:
        name: str = "short"

        def enrich(self, texts: Sequence[str]) -> list[str | None]:
            return [None]

    with pytest.raises(ValueError, match="enricher 'short' returned 1 texts for 3 items"):
        enrich_texts(["a", "b", "c"], [FillEmpty(), Short()])
