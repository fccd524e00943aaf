"""Bundles: the version layout ``shopaug train`` writes, loading, and frames -> Dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopaug.data import Dataset
from shopaug.data.errors import DataError
from shopaug.serve.bundle import (
    Bundle,
    RunLayout,
    TrainConfig,
    dataset_events,
    dataset_from_frames,
    train_bundle,
)


def test_train_writes_a_complete_version_and_points_at_it(
    markov_service_dir: Path, shop_run: Path
) -> None:
    layout = RunLayout(markov_service_dir)
    assert layout.versions() == [1] and layout.current() == 1
    assert layout.log_path.exists()
    bundle = Bundle.load(layout.version_dir(1))
    dataset = Dataset.load(shop_run)
    assert bundle.manifest.model == "markov" and bundle.manifest.protocol == "none"
    assert bundle.manifest.n_items == dataset.n_items == len(bundle.items)
    assert bundle.manifest.n_events == dataset.events.n_events == len(bundle.events)
    assert bundle.items["item_id"].tolist() == dataset.items["item_id"].tolist()
    assert bundle.embeddings.shape == (dataset.n_items, 384)
    assert bundle.model.n_items_ == dataset.n_items and bundle.search is not None


def test_training_again_into_a_used_folder_is_refused(
    markov_service_dir: Path, shop_run: Path
) -> None:
    with pytest.raises(DataError, match="retrain"):
        train_bundle(TrainConfig(data=shop_run, model="markov"), markov_service_dir)


def test_a_folder_without_a_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="shopaug train"):
        RunLayout(tmp_path).current()
    (tmp_path / "current").write_text("0007\n")
    with pytest.raises(DataError, match="0007"):
        RunLayout(tmp_path).current()


def test_events_and_frames_round_trip_through_a_dataset(shop_run: Path) -> None:
    dataset = Dataset.load(shop_run)
    events = dataset_events(dataset)
    again = dataset_from_frames(dataset.items, events, name="again")
    assert again.n_items == dataset.n_items
    by_user = dict(zip(dataset.events.users, dataset.events.to_lists(), strict=True))
    assert dict(zip(again.events.users, again.events.to_lists(), strict=True)) == by_user


def test_frames_keep_each_users_order_and_reject_unknown_items() -> None:
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["A", "B", "C"]})
    events = pd.DataFrame(
        {
            "user_id": ["u", "v", "u", "u"],
            "item_id": ["c", "a", "a", "b"],
            "event": "view",
            "timestamp": [None] * 4,
        }
    )
    dataset = dataset_from_frames(items, events, name="t")
    assert dataset.events.to_lists() == [[2, 0, 1], [0]]
    assert dataset.timestamps is None and np.asarray(dataset.event_types).tolist() == ["view"] * 4
    events.loc[3, "item_id"] = "zzz"
    with pytest.raises(DataError, match="event 3: item 'zzz'"):
        dataset_from_frames(items, events, name="t")
