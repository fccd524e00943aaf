"""The catalog: items similar to one (``GET /similar/{item_id}``), and new or changed items
(``POST /items``).

``POST /items`` encodes its texts in a thread first (one batch at a time per worker): that fails
before anything is logged, and fills the shared embedding cache, so every worker then applies the
items from the cache without encoding on its event loop.
"""

import asyncio

import anyio
from fastapi import APIRouter, HTTPException

from shopaug.serve.deps import CurrentService, CurrentState, Settings, Writer
from shopaug.serve.feedback import LogRecord
from shopaug.serve.http import (
    WRITER,
    PathId,
    Utf8BodyRoute,
    check_limit,
    check_text,
    problem,
    top_k,
)
from shopaug.serve.metrics import ITEMS
from shopaug.serve.routes.recommend import scored
from shopaug.serve.schemas import ItemBatch, ItemsAccepted, SimilarItems


def router(max_k: int) -> APIRouter:
    router = APIRouter(route_class=Utf8BodyRoute)
    K = top_k(max_k)

    @router.get("/similar/{item_id}", responses={404: problem("The item is not in the catalog.")})
    async def similar(state: CurrentState, item_id: PathId, k: K = 10) -> SimilarItems:
        item = state.item_index.get(item_id)
        if item is None:
            raise HTTPException(404, f"unknown item {item_id!r}: it is not in the catalog")
        ranked = state.similar(item, k)
        return SimilarItems(
            item_id=item_id, model_version=state.version, items=scored(state, ranked)
        )

    @router.post("/items", status_code=201, responses=WRITER)
    async def post_items(
        body: ItemBatch, _: Writer, service: CurrentService, state: CurrentState, settings: Settings
    ) -> ItemsAccepted:
        check_limit("items", len(body.items), settings.max_items)
        check_text(body.items, settings.max_item_text)
        # Off the event loop; fails before anything is logged, and warms the shared cache.
        await anyio.to_thread.run_sync(state.prepare_items, body.items, limiter=service.encoding)
        records = [LogRecord("item", item.model_dump(mode="json")) for item in body.items]
        appended = await asyncio.to_thread(service.log.append, records)
        new = [i.item_id for i in body.items if i.item_id not in state.item_index]
        updated = [i.item_id for i in body.items if i.item_id in state.item_index]
        state.refresh()  # apply this request's own records before answering
        ITEMS.inc(len(records))
        return ItemsAccepted(
            accepted=len(records), log_offset=appended.offset, new=new, updated=updated
        )

    return router
