"""Feedback: events appended to the durable log (``POST /events``).

The log is fsynced before the 201, then applied to this worker's state as every other worker
applies it (see :mod:`shopaug.serve.feedback`).
"""

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter

from shopaug.serve.deps import CurrentService, CurrentState, Settings, Writer
from shopaug.serve.feedback import LogRecord
from shopaug.serve.http import WRITER, Utf8BodyRoute, check_limit, invalid
from shopaug.serve.metrics import EVENTS
from shopaug.serve.schemas import Accepted, Event, EventBatch, canonical_time

router = APIRouter(route_class=Utf8BodyRoute)


@router.post("/events", status_code=201, responses=WRITER)
async def post_events(
    body: EventBatch, _: Writer, service: CurrentService, state: CurrentState, settings: Settings
) -> Accepted:
    check_limit("events", len(body.events), settings.max_events)
    # The state is refreshed: items another worker just added are known here too.
    for position, event in enumerate(body.events):
        if event.item_id not in state.item_index:
            raise invalid(
                ("body", "events", position, "item_id"),
                f"unknown item {event.item_id!r}; add it with POST /items first",
            )
    received = canonical_time(datetime.now(UTC))
    records = [event_record(event, received) for event in body.events]
    appended = await asyncio.to_thread(service.log.append, records)
    state.refresh()  # apply this request's own records before answering
    EVENTS.inc(len(records) - appended.duplicates)
    return Accepted(
        accepted=len(records), log_offset=appended.offset, duplicates=appended.duplicates
    )


def event_record(event: Event, received: str) -> LogRecord:
    """An event as the log holds it: times in canonical form, no null fields."""
    fields = event.model_dump(mode="json", exclude_none=True)
    return LogRecord("event", {**fields, "received": received})
