"""Operations: health, Prometheus metrics, and a reload of the model version ``current`` names."""

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from shopaug.serve.deps import CurrentService, CurrentState, Writer
from shopaug.serve.http import WRITER, Utf8BodyRoute
from shopaug.serve.metrics import exposition
from shopaug.serve.schemas import Health, Reloaded

router = APIRouter(route_class=Utf8BodyRoute)


@router.get("/health")
async def health(service: CurrentService, state: CurrentState) -> Health:
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


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


@router.post("/admin/reload", responses=WRITER)
async def reload(_: Writer, service: CurrentService) -> Reloaded:
    changed = await asyncio.to_thread(service.reload)
    return Reloaded(model_version=service.state.version, changed=changed)
