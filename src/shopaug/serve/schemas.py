"""Request and response bodies of the service, and its settings, as pydantic models.

Every request model forbids unknown fields, so a misspelt field is a 422 that names it instead of
being ignored; string lengths and list sizes are bounded so one request cannot exhaust a worker.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
EventName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32, pattern=r"^\w+$")
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
    """

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None
    max_k: int = Field(100, ge=1)
    max_events: int = Field(1000, ge=1)
    max_items: int = Field(100, ge=1)
    max_session: int = Field(200, ge=1)
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
    k: int = Field(10, ge=1)
    category: Id | None = None
    exclude_seen: bool = True


class SimilarItems(BaseModel):
    item_id: str
    model_version: int
    items: list[ScoredItem]


class SearchResults(BaseModel):
    query: str
    items: list[ScoredItem]


class Event(Strict):
    user_id: Id
    item_id: Id
    event: EventName = "view"
    timestamp: datetime | None = None


class EventBatch(Strict):
    events: list[Event] = Field(min_length=1)


class Accepted(BaseModel):
    accepted: int
    log_offset: int


class Item(Strict):
    item_id: Id
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    description: Text = ""
    brand: Annotated[str, StringConstraints(max_length=256)] = ""
    categories: Annotated[str, StringConstraints(max_length=1000)] = ""
    price: float | None = Field(None, ge=0)


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
    search: bool


class Reloaded(BaseModel):
    model_version: int
    changed: bool
