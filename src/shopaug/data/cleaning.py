"""Text cleaning for catalog and query text.

Real feeds carry HTML: Amazon titles hold ``&amp;`` and descriptions hold ``<br>`` tags. Encoders and
BM25 should see the text a shopper sees, so entities are decoded and tags removed before anything
else reads the text. Only real HTML tags are removed (a known element name right after ``<``, then
only ``name=value`` attributes), so text such as ``5 < 10 > 2`` or ``<Model X>`` survives.
"""

from __future__ import annotations

import html
import json
import re

import pyarrow as pa

#: HTML elements merchant feeds use for formatting; ``<name ...>`` with another name is text.
HTML_ELEMENTS = [
    "a",
    "abbr",
    "b",
    "big",
    "blockquote",
    "body",
    "br",
    "center",
    "cite",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "hr",
    "html",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "link",
    "meta",
    "ol",
    "p",
    "pre",
    "s",
    "small",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "wbr",
]
#: An attribute with a value (``name=value``, ``name="value"``): "a<b and c>d" is text, not a tag.
_ATTRIBUTE = r"""\s+[\w:-]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>]+)"""
_TAG = re.compile(
    rf"<!--.*?-->|</?(?:{'|'.join(HTML_ELEMENTS)})(?:{_ATTRIBUTE})*\s*/?>",
    re.IGNORECASE | re.DOTALL,
)
_SPACE = re.compile(r"\s+")
#: How a category list (``["Tools", "Widgets"]``) is joined into the schema's path.
CATEGORY_PATH_SEPARATOR = " > "


def clean_text(text: str | None) -> str | None:
    """Decode HTML entities (twice, for double-escaped feeds), drop tags, collapse whitespace."""
    if text is None:
        return None
    if "&" in text:
        text = html.unescape(html.unescape(text))
    if "<" in text:
        text = _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def category_path(text: str | None) -> str | None:
    """A JSON list of categories as the path the schema expects: ``A > B``.

    Parquet list columns and JSON lines arrays arrive as JSON text; a list of lists (several
    paths, as older Amazon metadata has) keeps its first path. Anything else is left as it is.
    """
    if text is None or not text.lstrip().startswith("["):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if not isinstance(value, list):
        return text
    if value and isinstance(value[0], list):
        value = value[0]
    return CATEGORY_PATH_SEPARATOR.join(str(v).strip() for v in value if str(v).strip())


def clean_text_arrow(values: pa.Array) -> pa.Array:
    """Vectorised entry point for DuckDB's arrow UDFs: one call per batch, not per row."""
    return pa.array([clean_text(v) for v in values.to_pylist()], type=pa.string())


def category_path_arrow(values: pa.Array) -> pa.Array:
    """:func:`category_path` as a DuckDB arrow UDF."""
    return pa.array([category_path(v) for v in values.to_pylist()], type=pa.string())
