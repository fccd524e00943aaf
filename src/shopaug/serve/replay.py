"""Reading the feedback log for replay: each record checked as the API checks a request, and a
record that cannot be applied set aside instead of stopping everything after it.

Every reader of the log (each worker's :class:`~shopaug.serve.state.ShopState` and ``retrain``)
reads through :func:`checked_entries`, so they agree on which records count. A line that is not
JSON, or a record the request models refuse (a price of ``Infinity`` written by an older version,
a hand edit), is quarantined: listed with its reason in the log's :class:`Quarantine` file, counted
in ``shopaug_log_records_quarantined_total`` and logged. Records already listed there are skipped,
so a record one worker could not apply is applied by none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import Counter
from pydantic import ValidationError

from shopaug.serve.feedback import FeedbackLog, LogRecord, Unreadable
from shopaug.serve.schemas import Item, LoggedEvent

logger = logging.getLogger("shopaug.serve")

QUARANTINED = Counter(
    "shopaug_log_records_quarantined",
    "Feedback log records set aside because they cannot be applied (see the quarantine file).",
)


@dataclass(frozen=True)
class Entry:
    """A log record that passed the request models: ``value`` is its validated, normalised form
    (ids stripped, times in canonical UTC)."""

    record: LogRecord
    value: LoggedEvent | Item


def checked_entries(log: FeedbackLog, offset: int) -> tuple[list[Entry], int]:
    """The valid records from byte ``offset`` on, and the offset just past the last line read.

    Unreadable and invalid lines are quarantined before this returns, so a caller may move its
    offset past them.
    """
    lines, end = log.entries(offset)
    skip = log.quarantine.offsets()
    entries = []
    for line in lines:
        if line.offset in skip:
            continue
        if isinstance(line, Unreadable):
            set_aside(log, line.offset, line.end, line.reason)
            continue
        model = LoggedEvent if line.kind == "event" else Item
        try:
            entries.append(Entry(line, model.model_validate(line.data)))
        except ValidationError as exc:
            set_aside(log, line.offset, line.end, f"invalid {line.kind}: {_reasons(exc)}")
    return entries, end


def set_aside(log: FeedbackLog, offset: int, end: int, reason: str) -> None:
    """Quarantine the line at ``offset``: listed with ``reason``, counted once, logged."""
    if log.quarantine.add(offset, log.line(offset, end), reason):
        QUARANTINED.inc()
        logger.warning(
            "feedback log %s: record at byte %d set aside in %s: %s",
            log.path,
            offset,
            log.quarantine.path.name,
            reason,
        )


def _reasons(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'record'}: {error['msg']}"
        for error in exc.errors()
    )
