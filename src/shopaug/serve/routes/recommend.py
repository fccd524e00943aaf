"""Recommendations for a known user (``GET /recommend/{user_id}``) or for a session's items
(``POST /recommend``); the popularity fallback answers when the model has nothing to go on."""

from fastapi import APIRouter

from shopaug.serve.deps import CurrentState, Settings
from shopaug.serve.http import TOO_LARGE, Category, PathId, Utf8BodyRoute, check_limit, top_k
from shopaug.serve.metrics import FALLBACKS
from shopaug.serve.schemas import Recommendations, ScoredItem, SessionRequest
from shopaug.serve.state import Ranked, ShopState


def router(max_k: int) -> APIRouter:
    router = APIRouter(route_class=Utf8BodyRoute)
    K = top_k(max_k)

    @router.get("/recommend/{user_id}")
    async def recommend_user(
        state: CurrentState,
        user_id: PathId,
        k: K = 10,
        category: Category = None,
        exclude_seen: bool = True,
    ) -> Recommendations:
        ranked = state.recommend(state.histories.get(user_id, []), k, category, exclude_seen)
        return recommendations(state, ranked, user_id=user_id)

    @router.post("/recommend", responses=TOO_LARGE)
    async def recommend_session(
        body: SessionRequest, state: CurrentState, settings: Settings
    ) -> Recommendations:
        check_limit("k", body.k, settings.max_k)
        check_limit("items", len(body.items), settings.max_session)
        known = [state.item_index[i] for i in body.items if i in state.item_index]
        ignored = [i for i in body.items if i not in state.item_index]
        ranked = state.recommend(known, body.k, body.category, body.exclude_seen)
        return recommendations(state, ranked, ignored=ignored)

    return router


def recommendations(
    state: ShopState, ranked: Ranked, user_id: str | None = None, ignored: list[str] | None = None
) -> Recommendations:
    if ranked.source == "popular":
        FALLBACKS.inc()
    return Recommendations(
        user_id=user_id,
        source=ranked.source,
        model_version=state.version,
        items=scored(state, ranked),
        ignored_items=ignored or [],
    )


def scored(state: ShopState, ranked: Ranked) -> list[ScoredItem]:
    return [
        ScoredItem(**state.item_fields(int(i)), score=float(s))
        for i, s in zip(ranked.items, ranked.scores, strict=True)
    ]
