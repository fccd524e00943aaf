"""Persistent response cache: one SQLite row per finished call.

LLM calls are the slowest and, with a hosted model, the only paid step of augmentation, and long
runs get interrupted. Every accepted completion is therefore committed on its own as soon as it
exists, in WAL mode: a process killed with SIGKILL midway loses only the call in flight, and the next
run finds every finished one. Failures and rejected outputs are never stored, so a rerun tries them
again. Rows are keyed by :func:`shopaug.llm.base.cache_key`, a sha256 of backend, model, prompt
version, messages and sampling parameters, so a changed prompt or model simply misses.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from shopaug.paths import user_cache_dir

if TYPE_CHECKING:
    from shopaug.llm.base import Completion

_SQLITE_TIMEOUT_S = 60.0
_COLUMNS = (
    "text",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "backend",
    "model",
    "prompt",
    "finish_reason",
    "refusal",
)


def default_cache_dir() -> Path:
    """``$SHOPAUG_CACHE_DIR/llm``, else ``$XDG_CACHE_HOME/shopaug/llm`` (~/.cache)."""
    return user_cache_dir("llm")


def _enable_wal(con: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another process opens the same new file: SQLite answers
    this pragma with "database is locked" at once, without waiting on the busy timeout."""
    deadline = time.monotonic() + _SQLITE_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class ResponseCache:
    """Cache key -> completion, in ``<directory>/responses.sqlite``; safe across threads and
    processes (each call opens its own connection and SQLite serialises writers)."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "responses.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            _enable_wal(con)
            con.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
                "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, "
                "latency_s REAL NOT NULL, backend TEXT NOT NULL, model TEXT NOT NULL, "
                "prompt TEXT, finish_reason TEXT, refusal TEXT, created REAL NOT NULL)"
            )
            columns = {row[1] for row in con.execute("PRAGMA table_info(responses)")}
            if "logprobs" not in columns:  # a cache written before token probabilities
                try:
                    con.execute("ALTER TABLE responses ADD COLUMN logprobs TEXT")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection whose block is one transaction, committed on exit."""
        with closing(sqlite3.connect(self.path, timeout=_SQLITE_TIMEOUT_S)) as con, con:
            yield con

    def get(self, key: str) -> Completion | None:
        """The stored completion of ``key`` (marked ``cached``), or None."""
        from shopaug.llm.base import Completion

        with self._connect() as con:
            row = con.execute(
                f"SELECT {', '.join(_COLUMNS)}, logprobs FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        *values, logprobs = row
        tokens = json.loads(logprobs) if logprobs else None
        return Completion(**dict(zip(_COLUMNS, values)), logprobs=tokens, key=key, cached=True)

    def put(self, key: str, completion: Completion) -> None:
        """Store ``completion`` under ``key``, committed before returning."""
        values = [getattr(completion, name) for name in _COLUMNS]
        tokens = completion.logprobs
        logprobs = None if tokens is None else json.dumps([t.model_dump() for t in tokens])
        marks = ", ".join("?" * (len(_COLUMNS) + 3))
        with self._connect() as con:
            con.execute(
                f"INSERT OR REPLACE INTO responses (key, {', '.join(_COLUMNS)}, logprobs, created) "
                f"VALUES ({marks})",
                [key, *values, logprobs, time.time()],
            )

    def keys(self) -> set[str]:
        with self._connect() as con:
            return {key for (key,) in con.execute("SELECT key FROM responses")}

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
