"""The FastAPI application: recommendation, similar items, search, feedback and catalog updates.

:class:`Service` owns the served :class:`~shopaug.serve.state.ShopState` and replaces it when the
run folder's ``current`` pointer names a new version: the new state is built in a background
thread (bundle loaded, log replayed) while the old one keeps answering, then one reference
assignment swaps them, so no request is dropped or sees half a model. Endpoints are ``async`` and
touch the state only from the event loop, so a worker needs no lock around it; the slow,
state-free parts (fsync of the log, loading a version) run in threads.

Write endpoints append to the feedback log and fsync before answering 2xx, then apply the log to
the state like every other worker does (see :mod:`shopaug.serve.feedback`).
"""

import asyncio
import hmac
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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
    EventBatch,
    Health,
    ItemBatch,
    ItemsAccepted,
    Recommendations,
    Reloaded,
    ScoredItem,
    SearchResults,
    ServeSettings,
    SessionRequest,
    SimilarItems,
)
from shopaug.serve.state import Ranked, ShopState

logger = logging.getLogger("shopaug.serve")

#: The run folder a uvicorn worker serves when the app is built by :func:`app_from_env`.
RUN_DIR_ENV = "SHOPAUG_RUN_DIR"
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


class Service:
    """The current state of one worker, and the swap to a newer model version."""

    def __init__(self, run_dir: Path, settings: ServeSettings) -> None:
        self.layout = RunLayout(run_dir)
        self.settings = settings
        self.log = FeedbackLog(self.layout.log_path)
        self.log.repair()
        self.state = self._load(self.layout.current())
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        MODEL_VERSION.set(self.state.version)

    def _load(self, version: int) -> ShopState:
        bundle = Bundle.load(self.layout.version_dir(version), live=True)

        def encoder() -> Any:
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


def create_app(run_dir: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    """The service over ``run_dir`` (a folder written by ``shopaug train``)."""
    run_dir = Path(run_dir)
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
    )
    app.state.service = service
    app.add_middleware(MeasureRequests)
    _install_error_handlers(app)
    api_key = _api_key_dependency(settings)
    Writer = Annotated[None, Depends(api_key)]
    K = Annotated[int, Query(ge=1, le=settings.max_k, description="Number of items.")]
    Category = Annotated[str | None, Query(min_length=1, max_length=256)]

    @app.get("/health")
    async def health() -> Health:
        state = service.state
        return Health(
            status="ok",
            model=state.bundle.manifest.model,
            model_version=state.version,
            items=state.n_items,
            users=len(state.histories),
            log_offset=state.offset,
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
        user_id: str, k: K = 10, category: Category = None, exclude_seen: bool = True
    ) -> Recommendations:
        state = service.state
        state.refresh()
        ranked = state.recommend(state.histories.get(user_id, []), k, category, exclude_seen)
        return _recommendations(state, ranked, user_id=user_id)

    @app.post("/recommend")
    async def recommend_session(body: SessionRequest) -> Recommendations:
        _check_limit("k", body.k, settings.max_k)
        _check_limit("items", len(body.items), settings.max_session)
        state = service.state
        state.refresh()
        known = [state.item_index[i] for i in body.items if i in state.item_index]
        ignored = [i for i in body.items if i not in state.item_index]
        ranked = state.recommend(known, body.k, body.category, body.exclude_seen)
        return _recommendations(state, ranked, ignored=ignored)

    @app.get("/similar/{item_id}")
    async def similar(item_id: str, k: K = 10) -> SimilarItems:
        state = service.state
        state.refresh()
        item = state.item_index.get(item_id)
        if item is None:
            raise HTTPException(404, f"unknown item {item_id!r}: it is not in the catalog")
        ranked = state.similar(item, k)
        return SimilarItems(
            item_id=item_id, model_version=state.version, items=_scored(state, ranked)
        )

    @app.get("/search")
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=500)],
        k: K = 10,
        category: Category = None,
        min_price: Annotated[float | None, Query(ge=0)] = None,
        max_price: Annotated[float | None, Query(ge=0)] = None,
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

    @app.post("/events", status_code=201)
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
        received = datetime.now(UTC).isoformat()
        records = [
            LogRecord("event", {**e.model_dump(mode="json"), "received": received})
            for e in body.events
        ]
        offset = await asyncio.to_thread(service.log.append, records)
        state.refresh()
        EVENTS.inc(len(records))
        return Accepted(accepted=len(records), log_offset=offset)

    @app.post("/items", status_code=201)
    async def post_items(body: ItemBatch, _: Writer) -> ItemsAccepted:
        _check_limit("items", len(body.items), settings.max_items)
        state = service.state
        state.refresh()
        rows = [item.model_dump(mode="json") for item in body.items]
        state.encode(pd.DataFrame(rows))  # fails before anything is logged; warms the cache
        offset = await asyncio.to_thread(
            service.log.append, [LogRecord("item", row) for row in rows]
        )
        new = [r["item_id"] for r in rows if r["item_id"] not in state.item_index]
        updated = [r["item_id"] for r in rows if r["item_id"] in state.item_index]
        state.refresh()
        ITEMS.inc(len(rows))
        return ItemsAccepted(accepted=len(rows), log_offset=offset, new=new, updated=updated)

    @app.post("/admin/reload")
    async def reload(_: Writer) -> Reloaded:
        changed = await asyncio.to_thread(service.reload)
        return Reloaded(model_version=service.state.version, changed=changed)

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: serves ``$SHOPAUG_RUN_DIR``."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        raise RuntimeError(f"set {RUN_DIR_ENV} to the run folder to serve")
    return create_app(Path(run_dir))


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


def _invalid(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])


def _check_limit(field: str, value: int, limit: int) -> None:
    if value > limit:
        raise _invalid(("body", field), f"at most {limit} allowed, got {value}")


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
    """Pure ASGI middleware: latency histogram per route template, and a cap on body size.

    Written against ASGI rather than as an ``@app.middleware("http")`` function, which wraps
    every request and response in extra tasks and costs more than ranking a history.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            response = JSONResponse({"detail": f"body over {MAX_BODY_BYTES} bytes"}, 413)
            await response(scope, receive, send)
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


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each field at fault, without echoing the (possibly huge) input back."""
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": _message(e)}
            for e in exc.errors()
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
