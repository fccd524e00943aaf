"""The routes' dependencies (FastAPI ``Depends``): the worker's :class:`Service` and its state,
kept on ``app.state``, and the API key that write endpoints require.

:func:`current_state` brings the served state up to date with the feedback log (records other
workers appended) once per request, before the route runs; FastAPI caches a dependency within a
request, so a route that needs both state and a sub-dependency of it still refreshes once. The
route then works on that one state object even if a model swap replaces it meanwhile.
"""

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from shopaug.serve.schemas import API_KEY_ENV, ServeSettings
from shopaug.serve.service import Service
from shopaug.serve.state import ShopState

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def current_service(request: Request) -> Service:
    """The worker's service, as :func:`~shopaug.serve.app.create_app` put it on ``app.state``."""
    return request.app.state.service


def current_settings(service: Annotated[Service, Depends(current_service)]) -> ServeSettings:
    return service.settings


def current_state(service: Annotated[Service, Depends(current_service)]) -> ShopState:
    """The served state, with every record the log has now applied (once per request)."""
    state = service.state
    state.refresh()
    return state


async def require_key(
    key: Annotated[str | None, Depends(_api_key_header)],
    settings: Annotated[ServeSettings, Depends(current_settings)],
) -> None:
    """Write endpoints need the configured API key; with none configured, writes are off."""
    if not settings.api_key:
        raise HTTPException(503, f"writes are disabled: no API key configured (set {API_KEY_ENV})")
    if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
        raise HTTPException(401, "missing or wrong API key (header X-API-Key)")


CurrentService = Annotated[Service, Depends(current_service)]
CurrentState = Annotated[ShopState, Depends(current_state)]
Settings = Annotated[ServeSettings, Depends(current_settings)]
Writer = Annotated[None, Depends(require_key)]
