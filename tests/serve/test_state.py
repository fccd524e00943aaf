"""The served state: fallbacks, categories, the log applied live, new items via their text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopaug.encode.text_encoder import TextEncoder
from shopaug.serve.bundle import Bundle, RunLayout, TrainConfig, train_bundle
from shopaug.serve.feedback import FeedbackLog, LogRecord
from shopaug.serve.state import ShopState, catalog_texts

TELESCOPE = {
    "item_id": "NEW-1",
    "title": "Refractor telescope 70 mm",
    "description": "For stargazing.",
    "brand": "Orbis",
    "categories": "Optics > Telescopes",
    "price": 99.0,
}


def state_over(service_dir: Path, tmp_path: Path) -> ShopState:
    bundle = Bundle.load(RunLayout(service_dir).version_dir(1))
    return ShopState(bundle, FeedbackLog(tmp_path / "log.jsonl"), TextEncoder)


@pytest.fixture
def state(markov_service_dir: Path, tmp_path: Path) -> ShopState:
    return state_over(markov_service_dir, tmp_path)


def test_unknown_history_falls_back_to_live_popularity(state: ShopState) -> None:
    ranked = state.recommend([], 5, None, True)
    assert ranked.source == "popular"
    assert ranked.scores.tolist() == sorted(state.popularity, reverse=True)[:5]
    least = int(np.argmin(state.popularity))
    state.log.append(
        [
            LogRecord("event", {"user_id": f"u{i}", "item_id": state.items.at[least, "item_id"]})
            for i in range(100)
        ]
    )
    state.refresh()
    assert state.recommend([], 1, None, True).items.tolist() == [least]


def test_category_restricts_and_an_empty_slice_is_empty(state: ShopState) -> None:
    department = str(state.items.at[0, "categories"]).split(" > ")[0]
    ranked = state.recommend([1, 2], 100, department.upper(), True)
    assert len(ranked.items) and all(
        state.items.at[int(i), "categories"].startswith(department) for i in ranked.items
    )
    assert len(state.recommend([1, 2], 10, "nothing like it", True).items) == 0
    assert len(state.recommend([], 10, "nothing like it", True).items) == 0


def test_logged_events_extend_the_users_history(state: ShopState) -> None:
    item = state.items.at[3, "item_id"]
    state.log.append([LogRecord("event", {"user_id": "new", "item_id": item})])
    assert state.refresh() == 1 and state.histories["new"] == [3]
    ranked = state.recommend(state.histories["new"], 5, None, True)
    assert ranked.source == "model" and 3 not in ranked.items.tolist()
    assert state.refresh() == 0


def test_a_replayed_log_rebuilds_the_same_state(markov_service_dir: Path, tmp_path: Path) -> None:
    first = state_over(markov_service_dir, tmp_path)
    first.log.append([LogRecord("item", TELESCOPE)])
    first.log.append([LogRecord("event", {"user_id": "u", "item_id": "NEW-1"})])
    first.refresh()
    second = state_over(markov_service_dir, tmp_path)  # a restarted worker
    assert second.histories["u"] == first.histories["u"] == [60]
    assert second.n_items == 61 and second.offset == first.offset
    np.testing.assert_allclose(second.embeddings, first.embeddings)


def test_new_and_changed_items_are_indexed(state: ShopState) -> None:
    state.log.append([LogRecord("item", TELESCOPE)])
    state.refresh()
    new = state.item_index["NEW-1"]
    assert new == 60 and state.item_fields(new)["title"] == TELESCOPE["title"]
    assert state.recommend([], 5, "telescopes", True).items.tolist() == [new]
    assert new in state.similar(0, 60).items.tolist()
    assert state.search.search("refractor telescope", k=1)[0].item_id == "NEW-1"
    changed = {**TELESCOPE, "title": "Binoculars 10x50", "categories": "Optics > Binoculars"}
    state.log.append([LogRecord("item", changed)])
    state.refresh()
    assert state.n_items == 61 and state.item_fields(new)["title"] == "Binoculars 10x50"
    assert len(state.recommend([], 5, "telescopes", True).items) == 0
    assert state.recommend([], 5, "binoculars", True).items.tolist() == [new]
    expected = TextEncoder().encode(catalog_texts(state.items.iloc[[new]]))
    np.testing.assert_allclose(state.embeddings[new], expected[0], rtol=1e-5)


def test_a_content_model_recommends_a_new_item_through_its_text(
    shop_run: Path, tmp_path: Path
) -> None:
    params = {"hidden": 16, "n_layers": 1, "max_len": 10, "epochs": 2, "num_threads": 1}
    config = TrainConfig(data=shop_run, model="content", params=params, search=False)
    train_bundle(config, tmp_path / "svc")
    state = state_over(tmp_path / "svc", tmp_path)
    assert state.search is None
    history = state.histories[next(iter(state.histories))]
    state.log.append([LogRecord("item", TELESCOPE)])
    state.refresh()
    new = state.item_index["NEW-1"]
    assert state.model.n_items_ == 61
    ranked = state.recommend(history, 61, None, False)
    assert ranked.source == "model" and new in ranked.items.tolist()
    assert np.isfinite(ranked.scores).all()
    only_new = state.recommend(history, 5, "Telescopes", True)
    assert only_new.source == "model" and only_new.items.tolist() == [new]
