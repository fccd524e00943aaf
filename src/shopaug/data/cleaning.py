"""Text cleaning for catalog and query text.

Real feeds carry HTML: Amazon titles hold ``&amp;`` and descriptions hold ``<br>`` tags. Encoders and
BM25 should see the text a shopper sees, so entities are decoded and tags removed before anything
else reads the text.
"""

from __future__ import annotations

import html
import re

import pyarrow as pa

_TAG = re.compile(r"<[^<>]{0,200}>")
_SPACE = re.compile(r"\s+")


def clean_text(text: str | None) -> str | None:
    """Decode HTML entities (twice, for double-escaped feeds), drop tags, collapse whitespace."""
    if text is None:
        return None
    if "&" in text:
        text = html.unescape(html.unescape(text))
    if "<" in text:
        text = _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def clean_text_arrow(values: pa.Array) -> pa.Array:
    """Vectorised entry point for DuckDB's arrow UDFs: one call per batch, not per row."""
    return pa.array([clean_text(v) for v in values.to_pylist()], type=pa.string())
