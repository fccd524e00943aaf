"""Lookup of a class by its registered name, shared by the model, strategy and filter registries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def build(registry: Mapping[str, type[T]], kinds: str, name: str, **params: Any) -> T:
    """``registry[name](**params)``; an unknown name fails listing the known ``kinds``."""
    try:
        cls = registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        kind = kinds.removesuffix("ies") + "y" if kinds.endswith("ies") else kinds.removesuffix("s")
        raise ValueError(f"unknown {kind} {name!r}; known {kinds}: {known}") from None
    return cls(**params)
