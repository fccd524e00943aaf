"""The FastAPI application: recommendation, similar items, search, feedback and catalog updates.

:class:`Service` owns the served :class:`~shopaug.serve.state.ShopState` and replaces it when the
run folder's ``current`` pointer names a new version: the new state is built in a background
thread (bundle loaded, log replayed) while the old one keeps answering, then one reference
assignment swaps them, so no request is dropped or sees half a model. Endpoints are ``async`` and
touch the state only from the event loop, so a worker needs no lock around it; the slow,
state-free parts (fsync of the log, loading a version) run in threads.

Write endpoints append to the feedback log and fsync before answering 2xx, then apply the log to
the state like every other worker does (see :mod:`shopaug.serve.feedback`). ``POST /items``
encodes its texts in a thread first (one batch at a time per worker): that fails before anything
is logged, and fills the shared embedding cache, so every worker then applies the items from the
cache without encoding on its event loop.

Errors: a 422 has the body FastAPI's OpenAPI schema declares (``{"detail": [{"loc", "msg",
"type"}]}``), every other error ``{"detail": "..."}`` (:class:`~shopaug.serve.schemas.Problem`),
and each route documents the statuses it can answer.
"""

import asyncio
import hmac
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pydantic import ValidationError

from shopaug.serve.bundle import Bundle, RunLayout
from shopaug.serve.feedback import FeedbackLog, LogRecord
from shopaug.serve.schemas import (
    API_KEY_ENV,
    Accepted,
    Event,
    EventBatch,
    Health,
    Id,
    Item,
    ItemBatch,
    ItemsAccepted,
    Problem,
    Recommendations,
    Reloaded,
    ScoredItem,
    SearchResults,
    ServeSettings,
    SessionRequest,
    SimilarItems,
    canonical_time,
)
from shopaug.serve.state import Ranked, ShopState

logger = logging.getLogger("shopaug.serve")

#: The run folder a uvicorn worker serves when the app is built by :func:`app_from_env`.
RUN_DIR_ENV = "SHOPAUG_RUN_DIR"
#: Exit status of a worker whose app cannot be built (uvicorn's own for a failed start).
STARTUP_FAILURE = 3
#: Largest request body accepted (a full batch of items with long descriptions fits easily).
MAX_BODY_BYTES = 8 * 1024 * 1024

REQUESTS = Histogram(
    "shopaug_request_seconds",
    "Request latency by endpoint, method and status.",
    ["endpoint", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVENTS = Counter("shopaug_events_accepted", "Events appended to the feedback log.")
ITEMS = Counter("shopaug_items_upserted", "Items added or changed through POST /items.")
FALLBACKS = Counter("shopaug_fallbacks", "Recommendations answered by the popularity fallback.")
MODEL_VERSION = Gauge(
    "shopaug_model_version", "Model version being served.", multiprocess_mode="max"
)


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


#: Statuses beyond 200 and 422 that routes can answer, for their OpenAPI ``responses``.
SERVER_ERROR = {500: _problem("Internal error; the service log has the details.")}
TOO_LARGE = {413: _problem(f"The request body is over {MAX_BODY_BYTES:,} bytes.")}
WRITER = {
    401: _problem("Missing or wrong API key (header X-API-Key)."),
    503: _problem("Writes are disabled: the service has no API key configured."),
    **TOO_LARGE,
}


class Service:
    """The current state of one worker, and the swap to a newer model version."""

    def __init__(self, run_dir: FilePath, settings: ServeSettings) -> None:
        self.layout = RunLayout(run_dir)
        self.settings = settings
        self.log = FeedbackLog(self.layout.log_path)
        self.log.repair()
        self.state = self._load(self.layout.current())
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._encoding: anyio.CapacityLimiter | None = None
        MODEL_VERSION.set(self.state.version)

    @property
    def encoding(self) -> anyio.CapacityLimiter:
        """One item batch encoded at a time per worker: a worker's share of the CPU, and a
        queue instead of a pile-up of threads (created on the event loop, at first use)."""
        if self._encoding is None:
            self._encoding = anyio.CapacityLimiter(1)
        return self._encoding

    def _load(self, version: int) -> ShopState:
        bundle = Bundle.load(self.layout.version_dir(version))

        def encoder() -> Any:
            """The search engine's encoder when there is one: one model in memory, and one cache
            of item vectors that every worker reads (the search engine encodes the same items)."""
            if bundle.search is not None:
                return bundle.search.encoder
            from shopaug.encode.text_encoder import TextEncoder

            return TextEncoder(model=bundle.manifest.encoder)

        state = ShopState(bundle, self.log, encoder)
        if state.search is not None and self.settings.warm_search:
            # Both encoders: the query path (ONNX graph exported or loaded here, not on the
            # first /search) and the item path that POST /items uses.
            state.search.query_encoder.encode("warm up the query encoder")
            state.search.encoder.encode(["warm up the item encoder"])
        return state

    def reload(self) -> bool:
        """Serve the version ``current`` points to, if it is not the served one."""
        with self._reload_lock:
            version = self.layout.current()
            if version == self.state.version:
                return False
            started = time.perf_counter()
            fresh = self._load(version)
            self.state = fresh  # one reference assignment: requests in flight keep the old one
            MODEL_VERSION.set(version)
            logger.info("now serving version %d (%.1fs)", version, time.perf_counter() - started)
            return True

    def watch(self) -> None:
        """Poll the pointer until :meth:`stop`; a failed load keeps the served version."""
        while not self._stop.wait(self.settings.reload_seconds):
            try:
                self.reload()
            except Exception:
                logger.exception("could not load the new model version; still serving the old")

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.watch, name="shopaug-reload", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def create_app(run_dir: str | FilePath, settings: ServeSettings | None = None) -> FastAPI:
    """The service over ``run_dir`` (a folder written by ``shopaug train``)."""
    run_dir = FilePath(run_dir)
    settings = settings or ServeSettings.load(run_dir)
    _limit_torch_threads()
    service = Service(run_dir, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        service.stop()

    app = FastAPI(
        title="shopaug",
        description="Recommendations, similar items and search, with a feedback loop.",
        lifespan=lifespan,
        responses=SERVER_ERROR,
    )
    app.router.route_class = Utf8BodyRoute
    app.state.service = service
    app.add_middleware(LimitBody)
    app.add_middleware(MeasureRequests)  # outermost: it also times the 413s
    _install_error_handlers(app)
    api_key = _api_key_dependency(settings)
    Writer = Annotated[None, Depends(api_key)]
    K = Annotated[int, Query(ge=1, le=settings.max_k, description="Number of items.")]
    Category = Annotated[str | None, Query(min_length=1, max_length=256)]
    Price = Annotated[float | None, Query(ge=0, allow_inf_nan=False)]

    @app.get("/health")
    async def health() -> Health:
        state = service.state
        state.refresh()
        return Health(
            status="ok",
            model=state.bundle.manifest.model,
            model_version=state.version,
            items=state.n_items,
            users=len(state.histories),
            log_offset=state.offset,
            quarantined=len(service.log.quarantine.offsets()),
            search=state.search is not None,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/recommend/{user_id}")
    async def recommend_user(
        user_id: Annotated[Id, Path(description="Stripped of surrounding blanks.")],
        k: K = 10,
        category: Category = None,
        exclude_seen: bool = True,
    ) -> Recommendations:
        state = service.state
        state.refresh()
        ranked = state.recommend(state.histories.get(user_id, []), k, category, exclude_seen)
        return _recommendations(state, ranked, user_id=user_id)

    @app.post("/recommend", responses=TOO_LARGE)
    async def recommend_session(body: SessionRequest) -> Recommendations:
        _check_limit("k", body.k, settings.max_k)
        _check_limit("items", len(body.items), settings.max_session)
        state = service.state
        state.refresh()
        known = [state.item_index[i] for i in body.items if i in state.item_index]
        ignored = [i for i in body.items if i not in state.item_index]
        ranked = state.recommend(known, body.k, body.category, body.exclude_seen)
        return _recommendations(state, ranked, ignored=ignored)

    @app.get("/similar/{item_id}", responses={404: _problem("The item is not in the catalog.")})
    async def similar(
        item_id: Annotated[Id, Path(description="Stripped of surrounding blanks.")], k: K = 10
    ) -> SimilarItems:
        state = service.state
        state.refresh()
        item = state.item_index.get(item_id)
        if item is None:
            raise HTTPException(404, f"unknown item {item_id!r}: it is not in the catalog")
        ranked = state.similar(item, k)
        return SimilarItems(
            item_id=item_id, model_version=state.version, items=_scored(state, ranked)
        )

    @app.get("/search", responses={503: _problem("This bundle has no search index.")})
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=500)],
        k: K = 10,
        category: Category = None,
        min_price: Price = None,
        max_price: Price = None,
    ) -> SearchResults:
        state = service.state
        state.refresh()
        if state.search is None:
            raise HTTPException(503, "search is not available: this bundle has no search index")
        from shopaug.search import SearchFilters

        try:
            filters = SearchFilters(category=category, min_price=min_price, max_price=max_price)
        except ValidationError as exc:  # min_price above max_price
            raise _invalid(("query", "min_price"), exc.errors()[0]["msg"]) from exc
        try:
            hits = state.search.search(q, k=k, filters=filters, mode=settings.search_mode)
        except ValueError as exc:  # a query of blanks only
            raise _invalid(("query", "q"), str(exc)) from exc
        items = [
            ScoredItem(**state.item_fields(state.item_index[h.item_id]), score=float(h.score))
            for h in hits
            if h.item_id in state.item_index
        ]
        return SearchResults(query=q, items=items)

    @app.post("/events", status_code=201, responses=WRITER)
    async def post_events(body: EventBatch, _: Writer) -> Accepted:
        _check_limit("events", len(body.events), settings.max_events)
        state = service.state
        state.refresh()  # items another worker just added must be known here too
        for position, event in enumerate(body.events):
            if event.item_id not in state.item_index:
                raise _invalid(
                    ("body", "events", position, "item_id"),
                    f"unknown item {event.item_id!r}; add it with POST /items first",
                )
        received = canonical_time(datetime.now(UTC))
        records = [_event_record(event, received) for event in body.events]
        appended = await asyncio.to_thread(service.log.append, records)
        state.refresh()
        EVENTS.inc(len(records) - appended.duplicates)
        return Accepted(
            accepted=len(records), log_offset=appended.offset, duplicates=appended.duplicates
        )

    @app.post("/items", status_code=201, responses=WRITER)
    async def post_items(body: ItemBatch, _: Writer) -> ItemsAccepted:
        _check_limit("items", len(body.items), settings.max_items)
        _check_text(body.items, settings.max_item_text)
        state = service.state
        state.refresh()
        # Off the event loop; fails before anything is logged, and warms the shared cache.
        await anyio.to_thread.run_sync(state.prepare_items, body.items, limiter=service.encoding)
        records = [LogRecord("item", item.model_dump(mode="json")) for item in body.items]
        appended = await asyncio.to_thread(service.log.append, records)
        new = [i.item_id for i in body.items if i.item_id not in state.item_index]
        updated = [i.item_id for i in body.items if i.item_id in state.item_index]
        state.refresh()
        ITEMS.inc(len(records))
        return ItemsAccepted(
            accepted=len(records), log_offset=appended.offset, new=new, updated=updated
        )

    @app.post("/admin/reload", responses=WRITER)
    async def reload(_: Writer) -> Reloaded:
        changed = await asyncio.to_thread(service.reload)
        return Reloaded(model_version=service.state.version, changed=changed)

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: serves ``$SHOPAUG_RUN_DIR``.

    An app that cannot be built exits with uvicorn's startup-failure status: its supervisor then
    stops the service instead of restarting a worker that can only fail again (for anything but a
    ``TypeError`` from the factory, uvicorn would restart it forever).
    """
    run_dir = os.environ.get(RUN_DIR_ENV)
    try:
        if not run_dir:
            raise RuntimeError(f"set {RUN_DIR_ENV} to the run folder to serve")
        return create_app(FilePath(run_dir))
    except Exception:
        logger.exception("the service over %s cannot start", run_dir)
        sys.exit(STARTUP_FAILURE)


def _recommendations(
    state: ShopState, ranked: Ranked, user_id: str | None = None, ignored: list[str] | None = None
) -> Recommendations:
    if ranked.source == "popular":
        FALLBACKS.inc()
    return Recommendations(
        user_id=user_id,
        source=ranked.source,
        model_version=state.version,
        items=_scored(state, ranked),
        ignored_items=ignored or [],
    )


def _scored(state: ShopState, ranked: Ranked) -> list[ScoredItem]:
    return [
        ScoredItem(**state.item_fields(int(i)), score=float(s))
        for i, s in zip(ranked.items, ranked.scores, strict=True)
    ]


def _event_record(event: Event, received: str) -> LogRecord:
    """An event as the log holds it: times in canonical form, no null fields."""
    fields = event.model_dump(mode="json", exclude_none=True)
    return LogRecord("event", {**fields, "received": received})


def _invalid(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])


def _check_limit(field: str, value: int, limit: int) -> None:
    if value > limit:
        raise _invalid(("body", field), f"at most {limit} allowed, got {value}")


def _check_text(items: list[Item], limit: int) -> None:
    """Bound the encoding work of one request (the per-field caps alone allow 100 x 12,000)."""
    total = sum(item.text_length() for item in items)
    if total > limit:
        raise _invalid(
            ("body", "items"),
            f"at most {limit:,} characters of item text (title, description, brand, categories) "
            f"per request, got {total:,}: send the items in smaller batches",
        )


def _api_key_dependency(settings: ServeSettings) -> Any:
    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    async def require_key(key: Annotated[str | None, Depends(header)]) -> None:
        if not settings.api_key:
            raise HTTPException(
                503, f"writes are disabled: no API key configured (set {API_KEY_ENV})"
            )
        if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (header X-API-Key)")

    return require_key


class MeasureRequests:
    """Pure ASGI middleware: latency histogram per route template, method and status.

    Written against ASGI rather than as an ``@app.middleware("http")`` function, which wraps
    every request and response in extra tasks and costs more than ranking a history.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(endpoint, scope["method"], str(status)).observe(
                time.perf_counter() - started
            )


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit:,} bytes")


class LimitBody:
    """Pure ASGI middleware: a request body over ``limit`` bytes is a 413.

    A declared size (Content-Length) is refused before anything is read. A body without one
    (chunked) is counted as it arrives: the chunk that passes the limit raises
    :class:`BodyTooLarge` inside the app's read, so the rest is never read and the body is never
    held whole in memory. FastAPI passes an ``HTTPException`` raised while it reads a body on to
    its handler, which answers the 413.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            error = BodyTooLarge(self.limit)
            response = JSONResponse({"detail": error.detail}, error.status_code)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


class Utf8BodyRoute(APIRoute):
    """A route whose request body must be UTF-8 (as JSON is): FastAPI answers bytes it cannot
    decode with a bare 400 "There was an error parsing the body"; this is a 422 saying where."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                _check_utf8(await request.body())  # read once: FastAPI reuses the bytes
            return await handler(request)

        return checked


def _check_utf8(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(
            ("body", exc.start), f"the body is not valid UTF-8: {exc.reason} at byte {exc.start}"
        ) from None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 in the shape the OpenAPI schema declares, naming each field at fault (``loc``),
        without echoing the (possibly huge) input back."""
        errors = [
            {"loc": list(e["loc"]), "msg": _message(e), "type": e["type"]} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the service log"}, status_code=500)


def _message(error: dict[str, Any]) -> str:
    """pydantic's message, with the parser's reason for malformed JSON (where it stopped)."""
    reason = (error.get("ctx") or {}).get("error")
    if error.get("type") == "json_invalid" and reason:
        return f"{error['msg']}: {reason}"
    return error["msg"]


def _limit_torch_threads() -> None:
    """One intra-op thread per worker: workers are the unit of parallelism, and oversubscribed
    cores would only add latency."""
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("SHOPAUG_TORCH_THREADS", "1")))
    except ImportError:
        pass
