"""Text search over the catalog (``GET /search``), with category and price filters."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import ValidationError

from shopaug.serve.deps import CurrentState, Settings
from shopaug.serve.http import Category, Price, Utf8BodyRoute, invalid, problem, top_k
from shopaug.serve.schemas import ScoredItem, SearchResults


def router(max_k: int) -> APIRouter:
    router = APIRouter(route_class=Utf8BodyRoute)
    K = top_k(max_k)

    @router.get("/search", responses={503: problem("This bundle has no search index.")})
    async def search(
        state: CurrentState,
        settings: Settings,
        q: Annotated[str, Query(min_length=1, max_length=500)],
        k: K = 10,
        category: Category = None,
        min_price: Price = None,
        max_price: Price = None,
    ) -> SearchResults:
        if state.search is None:
            raise HTTPException(503, "search is not available: this bundle has no search index")
        from shopaug.search import SearchFilters

        try:
            filters = SearchFilters(category=category, min_price=min_price, max_price=max_price)
        except ValidationError as exc:  # min_price above max_price
            raise invalid(("query", "min_price"), exc.errors()[0]["msg"]) from exc
        try:
            hits = state.search.search(q, k=k, filters=filters, mode=settings.search_mode)
        except ValueError as exc:  # a query of blanks only
            raise invalid(("query", "q"), str(exc)) from exc
        items = [
            ScoredItem(**state.item_fields(state.item_index[h.item_id]), score=float(h.score))
            for h in hits
            if h.item_id in state.item_index
        ]
        return SearchResults(query=q, items=items)

    return router
