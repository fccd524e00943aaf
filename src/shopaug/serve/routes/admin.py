"""Operations: health, the served version, Prometheus metrics, and a reload of the version
``current`` names."""

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from shopaug.serve.deps import CurrentService, CurrentState, Writer
from shopaug.serve.http import WRITER, Utf8BodyRoute
from shopaug.serve.metrics import exposition
from shopaug.serve.schemas import Health, Reloaded, VersionInfo

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
        augmented_with=list(plan.strategies) if (plan := state.bundle.manifest.augment) else [],
    )


@router.get("/version")
async def version(state: CurrentState) -> VersionInfo:
    """Which version is served and how it was made (the manifest, with the augmentation plan)."""
    manifest = state.bundle.manifest
    return VersionInfo(
        model_version=manifest.version,
        **manifest.model_dump(
            mode="json",
            include={
                "model",
                "params",
                "protocol",
                "created",
                "source",
                "n_events",
                "fit_seconds",
                "augment",
                "augmentation",
                "tuning",
                "gate",
            },
        ),
    )


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


@router.post("/admin/reload", responses=WRITER)
async def reload(_: Writer, service: CurrentService) -> Reloaded:
    changed = await asyncio.to_thread(service.reload)
    return Reloaded(model_version=service.state.version, changed=changed)
