"""Retraining folds the feedback log (events and items) into the next version."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from shopaug.serve.bundle import Bundle, RunLayout
from shopaug.serve.catalog import ITEM_FIELDS
from shopaug.serve.feedback import FeedbackLog, LogRecord
from shopaug.serve.retrain import fold_log, retrain


@pytest.fixture
def logged(service_dir: Path) -> RunLayout:
    """The Markov service folder with a new item, a changed item and three events logged."""
    layout = RunLayout(service_dir)
    first = Bundle.load(layout.version_dir(1)).items.iloc[0]
    log = FeedbackLog(layout.log_path)
    log.append([LogRecord("item", {"item_id": "NEW-1", "title": "Brand new lamp", "price": 5.0})])
    fields = {name: first[name] for name in ITEM_FIELDS}  # what POST /items logs
    log.append([LogRecord("item", {**fields, "title": "Renamed first item"})])
    log.append(
        [
            LogRecord("event", {"user_id": "fresh", "item_id": "NEW-1", "event": "view"}),
            LogRecord("event", {"user_id": "fresh", "item_id": first["item_id"], "event": "cart"}),
            LogRecord(
                "event",
                {
                    "user_id": "U000001",
                    "item_id": "NEW-1",
                    "event": "purchase",
                    "timestamp": "2026-05-01T10:00:00+00:00",
                },
            ),
        ]
    )
    return layout


def test_fold_log_applies_items_in_place_and_appends_events(logged: RunLayout) -> None:
    bundle = Bundle.load(logged.version_dir(1))
    items, events, offset = fold_log(bundle, FeedbackLog(logged.log_path))
    assert offset == logged.log_path.stat().st_size
    assert len(items) == len(bundle.items) + 1 and items["item_id"].iloc[-1] == "NEW-1"
    assert items["item_id"].iloc[:-1].tolist() == bundle.items["item_id"].tolist()
    assert items["title"].iloc[0] == "Renamed first item"
    assert len(events) == len(bundle.events) + 3
    assert events["user_id"].iloc[-3:].tolist() == ["fresh", "fresh", "U000001"]
    assert events["event"].iloc[-3:].tolist() == ["view", "cart", "purchase"]


def test_retrain_writes_and_publishes_the_next_version(logged: RunLayout) -> None:
    path = retrain(logged.run_dir)
    assert path == logged.version_dir(2) and logged.current() == 2
    bundle = Bundle.load(path)
    manifest = bundle.manifest
    assert manifest.model == "markov" and manifest.n_items == 61
    assert manifest.log_offset == logged.log_path.stat().st_size
    assert bundle.model.n_items_ == 61 and bundle.embeddings.shape[0] == 61
    assert bundle.search.search("brand new lamp", k=1)[0].item_id == "NEW-1"
    fresh = bundle.events[bundle.events["user_id"] == "fresh"]
    assert fresh["item_id"].tolist() == ["NEW-1", bundle.items["item_id"].iloc[0]]
    # Nothing new in the log: the next version folds nothing more.
    again = Bundle.load(retrain(logged.run_dir))
    assert again.manifest.version == 3 and again.manifest.n_events == manifest.n_events


def test_retrain_survives_mixed_time_precision_priceless_updates_and_bad_records(
    service_dir: Path,
) -> None:
    layout = RunLayout(service_dir)
    first = Bundle.load(layout.version_dir(1)).items["item_id"].iloc[0]
    log = FeedbackLog(layout.log_path)
    log.append([LogRecord("item", {"item_id": first, "title": "renamed"})])  # no price
    # Written as an older version logged them: times of two precisions, a price of Infinity.
    with log.path.open("ab") as f:
        for stamp in ["2024-01-01T00:00:00Z", "2024-01-01T00:00:01.250Z", "2024-01-01T00:00:02"]:
            line = {"kind": "event", "user_id": "late", "item_id": first, "timestamp": stamp}
            f.write(json.dumps(line).encode() + b"\n")
        f.write(b'{"kind": "item", "item_id": "INF", "title": "t", "price": Infinity}\n')
        f.write(b"not json at all\n")
    log.append([LogRecord("event", {"user_id": "late", "item_id": "INF"})])

    bundle = Bundle.load(retrain(service_dir))
    assert bundle.manifest.n_items == 60 and bundle.manifest.log_offset == log.size()
    row = bundle.items.set_index("item_id").loc[first]
    assert row["title"] == "renamed" and pd.isna(row["price"])
    late = bundle.events[bundle.events["user_id"] == "late"]
    seconds = late["timestamp"].dt.strftime("%S.%f").tolist()
    assert seconds == ["00.000000", "01.250000", "02.000000"]
    assert len(log.quarantine.offsets()) == 3  # the Infinity item, the line, the event naming it
    assert Bundle.load(retrain(service_dir)).manifest.n_events == bundle.manifest.n_events


def test_retrain_runs_the_versions_plan_again_on_data_plus_feedback(
    shop_run: Path, tmp_path: Path
) -> None:
    from shopaug.serve.bundle import TrainConfig, train_bundle

    plan = {"strategies": ["crop"], "params": {"crop": {"copies": 2}}, "filters": []}
    config = TrainConfig(data=shop_run, model="markov", augment=plan, search=False)
    first = Bundle.load(train_bundle(config, tmp_path / "svc"))
    layout = RunLayout(tmp_path / "svc")
    user, item = first.events["user_id"].iloc[0], first.items["item_id"].iloc[5]
    FeedbackLog(layout.log_path).append([LogRecord("event", {"user_id": user, "item_id": item})])
    second = Bundle.load(retrain(layout.run_dir)).manifest
    assert second.augment == first.manifest.augment and second.augment is not None
    assert second.n_events == first.manifest.n_events + 1
    # Samples were generated again, from one more real event.
    assert second.augmentation["kept"]["crop"] > 0
    assert second.augmentation["real_events"] == first.manifest.augmentation["real_events"] + 1
