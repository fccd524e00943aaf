"""Request and response bodies of the service, and its settings, as pydantic models.

Every request model forbids unknown fields, so a misspelt field is a 422 that names it instead of
being ignored; string lengths and list sizes are bounded so one request cannot exhaust a worker.
Numbers are strict (``"k": true`` is not ``k=1``) and finite (``Infinity`` would make the log
non-standard JSON), and times are stored in one canonical UTC form. The same models check the
feedback log when it is replayed, so a record the API would refuse is never applied.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

#: The span of event times accepted: a time outside it is a unit mix-up (milliseconds read as
#: seconds) or a typo, and pandas cannot hold times past 2262 when ``retrain`` reads the log.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    """One canonical time: in UTC (a time without a zone is taken as UTC), within the span."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError(
            f"must be from {EARLIEST.date()} up to {LATEST.date()}, got {value.isoformat()}"
        )
    return aware.astimezone(UTC)


def canonical_time(value: datetime) -> str:
    """The one form times take in the log (``2024-01-01T00:00:01.250000+00:00``): every record
    with the same precision, so ``retrain`` parses them all with one format."""
    return _utc(value).isoformat(timespec="microseconds")


def _stripped(value: str) -> str:
    """Stripped as Python strips (every later stage does), which also removes the control
    characters U+001C to U+001F that pydantic's own stripping keeps: an id made of them alone is
    a 422 here, not an empty id the index refuses with a server error."""
    value = value.strip()
    if not value:
        raise ValueError("must not be empty or only whitespace")
    return value


# pydantic itself refuses a lone surrogate in any text: JSON can spell one, UTF-8 cannot hold it.
Id = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_stripped)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_stripped)]
Brand = Annotated[str, StringConstraints(max_length=256)]
CategoryPath = Annotated[str, StringConstraints(max_length=1000)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
EventName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32, pattern=r"^\w+$")
]
Timestamp = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(canonical_time, return_type=str, when_used="json"),
]

#: Environment variable holding the write endpoints' API key (overrides ``serve.json``).
API_KEY_ENV = "SHOPAUG_API_KEY"
SETTINGS_FILE = "serve.json"


class ServeSettings(BaseModel):
    """Limits and secrets of a service; read from ``RUN_DIR/serve.json`` and the environment.

    ``api_key`` guards the write endpoints; without one they answer 503 (a shop that has not set a
    key gets a read-only service, never an open one). ``reload_seconds`` is how often each worker
    looks at the ``current`` pointer for a new model version. ``search_mode`` overrides the search
    index's own mode: encoding each query with the text encoder is most of a hybrid search's time
    on a CPU, so a latency-bound shop may serve ``bm25``. ``warm_search`` loads the query encoder
    when a version is loaded, not on the first search of each worker (a stall of seconds).
    ``max_item_text`` bounds the characters of item text one ``POST /items`` may carry (title,
    description, brand and categories together): encoding them is the costliest work a request
    can ask for.
    """

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None
    max_k: int = Field(100, ge=1)
    max_events: int = Field(1000, ge=1)
    max_items: int = Field(100, ge=1)
    max_session: int = Field(200, ge=1)
    max_item_text: int = Field(100_000, ge=1)
    reload_seconds: float = Field(2.0, gt=0)
    search_mode: Literal["bm25", "dense", "hybrid"] | None = None
    warm_search: bool = True

    @classmethod
    def load(cls, run_dir: Path) -> ServeSettings:
        path = run_dir / SETTINGS_FILE
        values = json.loads(path.read_text()) if path.exists() else {}
        if os.environ.get(API_KEY_ENV):
            values["api_key"] = os.environ[API_KEY_ENV]
        return cls.model_validate(values)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """The body of every error but a 422: what went wrong, in one sentence."""

    detail: str


class ScoredItem(BaseModel):
    item_id: str
    score: float
    title: str
    categories: str
    price: float | None


class Recommendations(BaseModel):
    """``source``: ``model`` (ranked by the model) or ``popular`` (the unknown-user fallback)."""

    user_id: str | None = None
    source: str
    model_version: int
    items: list[ScoredItem]
    ignored_items: list[str] = []


class SessionRequest(Strict):
    """An anonymous session: the items viewed so far, oldest first."""

    items: list[Id] = Field(default_factory=list)
    k: int = Field(10, ge=1, strict=True)
    category: Id | None = None
    exclude_seen: bool = Field(True, strict=True)


class SimilarItems(BaseModel):
    item_id: str
    model_version: int
    items: list[ScoredItem]


class SearchResults(BaseModel):
    query: str
    items: list[ScoredItem]


class Event(Strict):
    """``event_id``, when given, makes the event idempotent: an id the log already holds is
    acknowledged again but never logged or applied twice (a client may retry an unanswered batch
    as it is). ``timestamp`` is stored in UTC; a time without a zone is taken as UTC."""

    user_id: Id
    item_id: Id
    event: EventName = "view"
    timestamp: Timestamp | None = None
    event_id: Id | None = None


class LoggedEvent(Event):
    """An event as the log holds it: the request's fields and when it was received."""

    received: Timestamp | None = None


class EventBatch(Strict):
    events: list[Event] = Field(min_length=1)


class Accepted(BaseModel):
    """``accepted`` counts every record of the request; ``duplicates`` those of them whose
    ``event_id`` was logged before (acknowledged, not logged again)."""

    accepted: int
    log_offset: int
    duplicates: int = 0


class Item(Strict):
    """A whole catalog entry: posting a known ``item_id`` replaces every field (a field left out
    takes its default, so an update without ``price`` clears the price)."""

    item_id: Id
    title: Title
    description: Text = ""
    brand: Brand = ""
    categories: CategoryPath = ""
    price: float | None = Field(None, ge=0, strict=True, allow_inf_nan=False)

    def text_length(self) -> int:
        """Characters the text encoder reads for this item."""
        return len(self.title) + len(self.description) + len(self.brand) + len(self.categories)


class ItemBatch(Strict):
    items: list[Item] = Field(min_length=1)


class ItemsAccepted(Accepted):
    new: list[str]
    updated: list[str]


class Health(BaseModel):
    status: str
    model: str
    model_version: int
    items: int
    users: int
    log_offset: int
    quarantined: int
    search: bool
    #: The augmentation strategies the served model was trained with (empty: real rows only).
    augmented_with: list[str] = []


class VersionInfo(BaseModel):
    """The served version's manifest: how its model was fit (plan included), on what data,
    and what tuning and the retraining gate measured."""

    model_version: int
    model: str
    params: dict[str, Any]
    protocol: str
    created: str
    source: str
    n_events: int
    fit_seconds: float
    augment: dict[str, Any] | None = None
    augmentation: dict[str, Any] | None = None
    tuning: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None


class Reloaded(BaseModel):
    model_version: int
    changed: bool
