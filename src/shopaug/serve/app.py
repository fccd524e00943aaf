"""The FastAPI application: recommendation, similar items, search, feedback and catalog updates.

:func:`create_app` builds the app over a run folder: the worker's
:class:`~shopaug.serve.service.Service` (the served state and its swap to newer model versions)
on ``app.state``, the middleware, the error handlers, and the routers of
:mod:`shopaug.serve.routes`, one per resource, which get the state through the dependencies of
:mod:`shopaug.serve.deps`. Endpoints are ``async`` and touch the state only from the event loop,
so a worker needs no lock around it; the slow, state-free parts (fsync of the log, loading a
version, encoding item texts) run in threads.

Write endpoints append to the feedback log and fsync before answering 2xx, then apply the log to
the state like every other worker does (see :mod:`shopaug.serve.feedback`).

Errors: a 422 has the body FastAPI's OpenAPI schema declares (``{"detail": [{"loc", "msg",
"type"}]}``), every other error ``{"detail": "..."}`` (:class:`~shopaug.serve.schemas.Problem`),
and each route documents the statuses it can answer.
"""

import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shopaug.serve.http import MAX_BODY_BYTES, SERVER_ERROR, Utf8BodyRoute
from shopaug.serve.metrics import REQUESTS
from shopaug.serve.routes import routers
from shopaug.serve.schemas import ServeSettings
from shopaug.serve.service import Service

__all__ = [
    "MAX_BODY_BYTES",
    "RUN_DIR_ENV",
    "STARTUP_FAILURE",
    "LimitBody",
    "MeasureRequests",
    "Service",
    "Utf8BodyRoute",
    "app_from_env",
    "create_app",
]

logger = logging.getLogger("shopaug.serve")

#: The run folder a uvicorn worker serves when the app is built by :func:`app_from_env`.
RUN_DIR_ENV = "SHOPAUG_RUN_DIR"
#: Exit status of a worker whose app cannot be built (uvicorn's own for a failed start).
STARTUP_FAILURE = 3


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
    app.state.service = service
    app.add_middleware(LimitBody)
    app.add_middleware(MeasureRequests)  # outermost: it also times the 413s
    _install_error_handlers(app)
    for router in routers(settings):
        app.include_router(router)
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
