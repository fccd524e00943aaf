"""Fielded BM25 (``bm25s``) with incremental updates, and highlighting of matched words.

Fields: one ``bm25s`` index per field, and an item's score is the weighted sum of its per-field
BM25 scores. Repeating a field's text ``w`` times would be the cheaper trick, but it changes the
field's length normalisation and term frequencies together (a repeated title saturates through
``k1`` instead of counting ``w`` times), and a new weight would need a new index. Per-field indices
keep each field's statistics its own (short titles are not compared with long descriptions) and
make the weights a plain number applied at query time.

Updates: ``bm25s`` builds an index in one go from a whole corpus and has no ``add``. The index is
therefore a *main* segment plus a small *delta* segment holding the items added since the last
build. Retired slots (changed or removed items) stay in the segments and are masked out by the
caller's ``alive`` mask (tombstones). The delta is re-indexed lazily on the next search after a
change; so that its IDF and average length resemble the main segment's, it is indexed together
with a fixed random background sample of main documents whose scores are discarded. Once
changes exceed ``delta_limit`` of the main segment, everything is rebuilt from live items, which
also brings IDF back to the exact corpus statistics.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from shopaug.search.base import FieldWeights, ItemTable

#: ``bm25s``' default token pattern; highlighting uses the same one so it marks what matched.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
STOPWORDS = "english"
#: Main documents indexed alongside a delta segment, for its corpus statistics only.
BACKGROUND_DOCS = 2000
_SNIPPET_CHARS = 160


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased word tokens without English stopwords, as ``bm25s`` tokenises."""
    import bm25s

    return bm25s.tokenize(
        list(texts),
        token_pattern=TOKEN_PATTERN,
        stopwords=STOPWORDS,
        return_ids=False,
        show_progress=False,
    )


class _Segment:
    """One ``bm25s`` index per field over the documents of ``slots`` (+ ``background`` docs)."""

    def __init__(
        self,
        table: ItemTable,
        slots: np.ndarray,
        weights: FieldWeights,
        background: np.ndarray | None = None,
    ) -> None:
        import bm25s

        self.slots = np.asarray(slots, dtype=np.int64)
        docs = self.slots if background is None else np.concatenate([self.slots, background])
        self.indexes: list[tuple[float, bm25s.BM25]] = []
        for name, weight in weights.items():
            tokens = tokenize(table.frame[name].iloc[docs].tolist())
            if not any(tokens):
                continue  # a field nobody filled in (no brands) has nothing to index
            index = bm25s.BM25()
            index.index(tokens, show_progress=False)
            self.indexes.append((weight, index))

    def scores(self, words: list[str]) -> np.ndarray:
        """Weighted per-field BM25 of ``words`` for each document of ``slots``."""
        total = np.zeros(len(self.slots), dtype=np.float32)
        for weight, index in self.indexes:
            ids = index.get_tokens_ids(words)
            if ids:
                total += weight * index.get_scores(ids)[: len(self.slots)]
        return total


class KeywordIndex:
    """Fielded BM25 over the live slots of an :class:`ItemTable` (see the module docstring)."""

    def __init__(self, weights: FieldWeights, delta_limit: float = 0.1, seed: int = 0) -> None:
        self.weights = weights
        self.delta_limit = delta_limit
        self.seed = seed
        self._main: _Segment | None = None
        self._delta: _Segment | None = None
        self._pending = np.zeros(0, dtype=np.int64)
        self._stale = 0
        self.rebuilds = 0

    def build(self, table: ItemTable) -> None:
        """Index all live items from scratch."""
        self._main = _Segment(table, table.live_slots(), self.weights)
        self._delta, self._pending, self._stale = None, np.zeros(0, dtype=np.int64), 0
        self.rebuilds += 1

    def added(self, table: ItemTable, slots: np.ndarray, retired: int) -> None:
        """New ``slots`` were appended and ``retired`` old ones tombstoned."""
        self._pending = np.concatenate([self._pending, np.asarray(slots, dtype=np.int64)])
        self._stale += retired
        self._delta = None
        self._maybe_rebuild(table)

    def removed(self, table: ItemTable, retired: int) -> None:
        self._stale += retired
        self._maybe_rebuild(table)

    @property
    def delta_size(self) -> int:
        return len(self._pending)

    def _maybe_rebuild(self, table: ItemTable) -> None:
        main = len(self._main.slots) if self._main is not None else 0
        if self._main is None or len(self._pending) + self._stale > self.delta_limit * main:
            self.build(table)

    def scores(self, table: ItemTable, query: str) -> np.ndarray:
        """BM25 score of every slot (0 where no query word matches; tombstones not masked)."""
        words = tokenize([query])[0]
        out = np.zeros(table.n_slots, dtype=np.float32)
        if not words or self._main is None:
            return out
        out[self._main.slots] = self._main.scores(words)
        if len(self._pending):
            out[self._pending] = self._delta_segment(table).scores(words)
        return out

    def _delta_segment(self, table: ItemTable) -> _Segment:
        if self._delta is None:
            main = self._main.slots[table.alive[self._main.slots]]
            rng = np.random.default_rng(self.seed)
            sample = rng.choice(main, size=min(BACKGROUND_DOCS, len(main)), replace=False)
            self._delta = _Segment(table, self._pending, self.weights, np.sort(sample))
        return self._delta


@lru_cache(maxsize=1024)
def _terms_pattern(terms: frozenset[str]) -> re.Pattern[str]:
    """Whole words equal to one of ``terms`` ignoring case: what the token pattern would find
    and keep, without tokenising every word of every field (``highlight`` re-checks each match)."""
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?u)\b(?:{alternatives})\b", re.IGNORECASE)


def highlight(text: str, terms: set[str], snippet: bool = False) -> str | None:
    """``text`` (HTML-escaped) with words whose token is in ``terms`` wrapped in ``<em>``; None
    if none matched. ``snippet`` cuts long text to a window around the first match."""
    if not terms:
        return None
    candidates = _terms_pattern(frozenset(terms)).finditer(text)
    matches = [m for m in candidates if m.group(0).lower() in terms]
    if not matches:
        return None
    start, end = 0, len(text)
    if snippet and len(text) > _SNIPPET_CHARS:
        start = max(0, matches[0].start() - _SNIPPET_CHARS // 4)
        end = min(len(text), start + _SNIPPET_CHARS)
        matches = [m for m in matches if m.end() <= end]
    parts, cursor = [], start
    for m in matches:
        parts += [html.escape(text[cursor : m.start()]), f"<em>{html.escape(m.group(0))}</em>"]
        cursor = m.end()
    parts.append(html.escape(text[cursor:end]))
    prefix, suffix = ("…" if start > 0 else ""), ("…" if end < len(text) else "")
    return prefix + "".join(parts) + suffix
