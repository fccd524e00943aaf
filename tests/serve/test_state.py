"""The served state: fallbacks, categories, the log applied live, new items via their text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

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


def test_an_item_updated_without_a_price_keeps_its_index_and_loses_its_price(
    state: ShopState,
) -> None:
    item_id = state.items.at[3, "item_id"]
    listed = state.items.at[3, "listed_at"]
    state.log.append([LogRecord("item", {"item_id": item_id, "title": "renamed"})])
    assert state.refresh() == 1
    fields = state.item_fields(3)
    assert (fields["item_id"], fields["title"], fields["price"]) == (item_id, "renamed", None)
    assert state.n_items == 60 and state.item_index[item_id] == 3
    assert state.items.at[3, "listed_at"] == listed  # a column the API does not know is kept
    assert state.log.quarantine.offsets() == frozenset()
    assert state.search.search("renamed", k=1)[0].item_id == item_id


class FailingEncoder(TextEncoder):
    """Cannot encode a text holding BOOM: an item whose preparation fails."""

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if any("BOOM" in t for t in texts):
            raise RuntimeError("encoder failed")
        return super().encode(texts, progress)


def quarantined() -> float:
    return REGISTRY.get_sample_value("shopaug_log_records_quarantined_total") or 0.0


def test_records_that_cannot_be_applied_are_set_aside_once_and_block_nothing(
    markov_service_dir: Path, tmp_path: Path
) -> None:
    bundle = Bundle.load(RunLayout(markov_service_dir).version_dir(1))
    log = FeedbackLog(tmp_path / "log.jsonl")
    known = bundle.items["item_id"].iloc[0]
    log.append([LogRecord("event", {"user_id": "u", "item_id": known})])
    with log.path.open("ab") as f:
        f.write(b'{"kind": "event", "user_id": \n')  # not JSON
        f.write(b'{"kind": "item", "item_id": "INF", "title": "t", "price": Infinity}\n')
    log.append([LogRecord("event", {"user_id": "u", "item_id": "no-such-item"})])
    boom = {"item_id": "BOOM-1", "title": "BOOM lamp"}
    log.append([LogRecord("item", boom), LogRecord("item", TELESCOPE)])  # one batch
    log.append([LogRecord("event", {"user_id": "u", "item_id": "NEW-1"})])
    before = quarantined()

    first = ShopState(bundle, log, FailingEncoder)
    assert first.histories["u"] == [0, 60] and first.n_items == 61
    assert "BOOM-1" not in first.item_index and first.offset == log.size()
    reasons = [json.loads(line)["reason"] for line in log.quarantine.path.read_text().splitlines()]
    assert len(reasons) == 4 and quarantined() == before + 4
    assert "not JSON" in reasons[0] and "price" in reasons[1]
    assert "no-such-item" in reasons[2] and "encoder failed" in reasons[3]

    second = ShopState(Bundle.load(bundle.path), FeedbackLog(log.path), FailingEncoder)
    assert second.histories["u"] == first.histories["u"] and second.offset == first.offset
    assert second.n_items == first.n_items and quarantined() == before + 4
    assert len(log.quarantine.path.read_text().splitlines()) == 4


def test_a_record_quarantined_by_one_worker_is_skipped_by_the_others(
    markov_service_dir: Path, tmp_path: Path
) -> None:
    log = FeedbackLog(tmp_path / "log.jsonl")
    end = log.append([LogRecord("item", TELESCOPE)]).offset
    log.quarantine.add(0, "", "set aside by another worker")
    state = state_over(markov_service_dir, tmp_path)
    assert "NEW-1" not in state.item_index and state.offset == end
