"""The service's endpoints, one :class:`fastapi.APIRouter` per resource (FastAPI's "bigger
applications" layout). Routes get the worker's state and settings through the dependencies of
:mod:`shopaug.serve.deps`; a router that declares ``k`` is built for the service's ``max_k``,
the one setting its OpenAPI schema states."""

from fastapi import APIRouter

from shopaug.serve.routes import admin, catalog, feedback, recommend, search
from shopaug.serve.schemas import ServeSettings


def routers(settings: ServeSettings) -> list[APIRouter]:
    """Every router of the service."""
    return [
        recommend.router(settings.max_k),
        catalog.router(settings.max_k),
        search.router(settings.max_k),
        feedback.router,
        admin.router,
    ]
