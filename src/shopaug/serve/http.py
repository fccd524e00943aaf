"""HTTP pieces the routers share: the error statuses routes document, 422s raised by hand in
the shape FastAPI's own have, request limits, and the route class that insists on UTF-8 bodies."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from shopaug.serve.schemas import Id, Item, Problem

#: Largest request body accepted (a full batch of items with long descriptions fits easily).
MAX_BODY_BYTES = 8 * 1024 * 1024


def problem(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry whose body is a :class:`~shopaug.serve.schemas.Problem`."""
    return {"model": Problem, "description": description}


#: Statuses beyond 200 and 422 that routes can answer, for their OpenAPI ``responses``.
SERVER_ERROR = {500: problem("Internal error; the service log has the details.")}
TOO_LARGE = {413: problem(f"The request body is over {MAX_BODY_BYTES:,} bytes.")}
WRITER = {
    401: problem("Missing or wrong API key (header X-API-Key)."),
    503: problem("Writes are disabled: the service has no API key configured."),
    **TOO_LARGE,
}


def invalid(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])


def check_limit(field: str, value: int, limit: int) -> None:
    if value > limit:
        raise invalid(("body", field), f"at most {limit} allowed, got {value}")


def check_text(items: list[Item], limit: int) -> None:
    """Bound the encoding work of one request (the per-field caps alone allow 100 x 12,000)."""
    total = sum(item.text_length() for item in items)
    if total > limit:
        raise invalid(
            ("body", "items"),
            f"at most {limit:,} characters of item text (title, description, brand, categories) "
            f"per request, got {total:,}: send the items in smaller batches",
        )


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
        raise invalid(
            ("body", exc.start), f"the body is not valid UTF-8: {exc.reason} at byte {exc.start}"
        ) from None


Category = Annotated[str | None, Query(min_length=1, max_length=256)]
Price = Annotated[float | None, Query(ge=0, allow_inf_nan=False)]
PathId = Annotated[Id, Path(description="Stripped of surrounding blanks.")]


def top_k(max_k: int) -> Any:
    """The ``k`` query parameter, bounded by the service's ``max_k`` (which the schema states)."""
    return Annotated[int, Query(ge=1, le=max_k, description="Number of items.")]
