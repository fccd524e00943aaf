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


def tuned(model: str = "sasrec", best_epoch: int | None = 7, augment: dict | None = None):
    from shopaug.workflow.tune import TunedPlan

    params = {"hidden": 16, "epochs": 50} if model == "sasrec" else {}
    return TunedPlan(
        model=model,
        params=params,
        augment=augment,
        protocol="S",
        objective="validation NDCG@10",
        score=0.06,
        baseline_score=0.05,
        best_epoch=best_epoch,
        chosen_trial=3,
        verdict="trial 3 beats",
        data="d",
        created="now",
        seconds=1.0,
        trials=[],
    )


def test_a_plan_trains_its_model_for_the_epochs_validation_chose(tmp_path: Path) -> None:
    plan = tuned()
    refit = TrainConfig.from_plan(plan, tmp_path / "plan.yaml", data=tmp_path)
    assert refit.model == "sasrec" and refit.params == {"hidden": 16, "epochs": 7}
    assert refit.tuning["score"] == 0.06 and refit.tuning["baseline_score"] == 0.05
    given = TrainConfig.from_plan(plan, tmp_path, data=tmp_path, params={"epochs": 3})
    assert given.params["epochs"] == 3
    # With a protocol the model early-stops on its validation cases: the plan's epochs stay.
    split = TrainConfig.from_plan(plan, tmp_path, data=tmp_path, protocol="S")
    assert split.params["epochs"] == 50
    markov = TrainConfig.from_plan(tuned("markov", None), tmp_path, data=tmp_path)
    assert "epochs" not in markov.params
    with pytest.raises(ValueError, match="order"):
        TrainConfig(data=tmp_path, model="markov", params={"order": 0})


def test_a_plan_version_records_the_plan_samples_and_generators(
    shop_run: Path, tmp_path: Path
) -> None:
    plan = tuned("markov", None, {"strategies": ["crop"], "params": {"crop": {"copies": 2}}})
    config = TrainConfig.from_plan(plan, tmp_path / "plan.yaml", data=shop_run, search=False)
    bundle = Bundle.load(train_bundle(config, tmp_path / "svc"))
    manifest = bundle.manifest
    assert manifest.augment is not None and manifest.augment.strategies == ["crop"]
    kept = manifest.augmentation["kept"]["crop"]
    assert kept > 0 and manifest.augmentation["generated"]["crop"] >= kept
    (generator,) = manifest.augmentation["generators"]["crop"]
    assert generator.startswith("crop(") and "copies=2" in generator
    assert manifest.tuning["plan_file"] == str(tmp_path / "plan.yaml")
    # The events stored are the real ones only: generated rows are training material.
    assert manifest.n_events == len(bundle.events) == Dataset.load(shop_run).events.n_events
    assert manifest.spec().augment == manifest.augment
