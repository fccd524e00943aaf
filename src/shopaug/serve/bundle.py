"""The servable bundle: one folder per model version, and the run folder that holds them.

A service run folder looks like this::

    RUN_DIR/
      current                  the version being served ("0003"); replaced atomically
      feedback.jsonl           the durable log of accepted events and item changes (all versions)
      versions/0001/
        manifest.json          model name and parameters, sizes, the log offset folded in, timing
        model.bin              ``Recommender.save`` of the fitted model
        items.parquet          the catalog; row i is item index i (the item id map)
        events.parquet         every event the model was fit on (user_id, item_id, event, timestamp)
        embeddings.npy         text-encoder embedding of every item (ANN index, new-item scoring)
        search/                the keyword/hybrid search engine, when ``shopaug.search`` is present

A version is written under a temporary name and renamed into place, then ``current`` is replaced,
so a running service never sees half a bundle. ``manifest.log_offset`` is the size of the feedback
log when the version's training data was cut: a service loading the version replays the log from
there on top of it, and ``retrain`` folds the rest of the log into the next version.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

from shopaug.data.dataset import Dataset
from shopaug.data.errors import DataError
from shopaug.data.sequences import Sequences
from shopaug.models import (
    MODELS,
    Recommender,
    TrainData,
    check_model_params,
    make_model,
    model_class,
)
from shopaug.models.augmented import AugmentPlan, augment_train
from shopaug.progress import StageCallback, notifier, within

if TYPE_CHECKING:
    from shopaug.workflow.tune import TunedPlan

POINTER_FILE = "current"
LOG_FILE = "feedback.jsonl"
VERSIONS_DIR = "versions"
EVENT_COLUMNS = ["user_id", "item_id", "event", "timestamp"]


class FitSpec(BaseModel):
    """How a version's model is fit: the model, its parameters, which rows, and the augmentation
    plan. A version's manifest holds it, so ``retrain`` repeats the same fit on more data."""

    model_config = ConfigDict(extra="forbid")

    model: str
    params: dict[str, Any] = {}
    #: ``none`` fits on every event, as a served model should; a protocol letter fits on that
    #: protocol's training rows with its validation cases for early stopping.
    protocol: Literal["none", "W", "C", "S", "T"] = "none"
    encoder: str | None = None
    #: Generated samples mixed into the training rows (a plan chosen by ``shopaug tune``).
    augment: AugmentPlan | None = None
    #: Seed of the augmentation strategies.
    seed: int = 0

    @model_validator(mode="after")
    def _known_model_and_params(self) -> FitSpec:
        """The model and its parameters are checked here, before data is read or encoded."""
        self.params = check_model_params(self.model, self.params)
        return self


class BundleManifest(FitSpec):
    """What a version is: enough to load it, to retrain it the same way, and to audit it."""

    version: int
    n_items: int
    n_users: int
    n_events: int
    log_offset: int = 0
    source: str
    created: str
    fit_seconds: float
    search: bool = False
    #: What generation and filtering did: samples per strategy, removals per filter, kept rows,
    #: and the generators (strategy parameters, LLM backend and prompt version) that made them.
    augmentation: dict[str, Any] | None = None
    #: Where the plan came from: the ``plan.yaml`` and its validation scores with and without
    #: augmentation.
    tuning: dict[str, Any] | None = None
    #: ``retrain --gate``: both versions' scores on the feedback window, the CI and the decision.
    gate: dict[str, Any] | None = None

    def spec(self) -> FitSpec:
        return FitSpec.model_validate(self.model_dump(include=set(FitSpec.model_fields)))


class TrainConfig(FitSpec):
    """``shopaug train``: which data, which model, on which rows (all of them by default)."""

    data: Path
    events: list[str] | None = None
    work_dir: Path = Path("runs/bench")
    search: bool = True
    tuning: dict[str, Any] | None = None

    @classmethod
    def from_plan(cls, plan: TunedPlan, plan_path: Path, **fields: Any) -> TrainConfig:
        """A config that trains the model ``shopaug tune`` chose, with its plan.

        A fit on every event has no validation left to stop on, so an early-stopped model
        trains the epochs at which its validation peaked during tuning (unless ``epochs`` is
        given), the usual refit once the epoch count is chosen; what else the chosen trial chose
        on validation (a blend's weights) is fixed the same way.
        """
        given = fields.pop("params", {})
        params = {**plan.params, **given}
        if fields.get("protocol", "none") == "none" and "epochs" not in given:
            params = refit_params(plan.model, params, plan.best_epoch, [plan.choices])
        tuning = {
            "plan_file": str(plan_path),
            "protocol": plan.protocol,
            "objective": plan.objective,
            "score": plan.score,
            "baseline_score": plan.baseline_score,
            "chosen_trial": plan.chosen_trial,
            "verdict": plan.verdict,
            "trials": len(plan.trials),
        }
        return cls(model=plan.model, params=params, augment=plan.augment, tuning=tuning, **fields)


def refit_params(
    model: str,
    params: dict[str, Any],
    best_epoch: int | None,
    choices: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``params`` for a refit on every event: what validation chose (the epoch an early-stopped
    model peaked at, a blend's weights) fixed, since no validation is left to choose on; see
    :meth:`shopaug.models.Recommender.refit_params`."""
    return model_class(model).refit_params(params, best_epoch, choices or [])


@dataclass(frozen=True)
class RunLayout:
    """Paths of a service run folder and the ``current`` pointer."""

    run_dir: Path

    @property
    def pointer(self) -> Path:
        return self.run_dir / POINTER_FILE

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_FILE

    def version_dir(self, version: int) -> Path:
        return self.run_dir / VERSIONS_DIR / f"{version:04d}"

    def versions(self) -> list[int]:
        root = self.run_dir / VERSIONS_DIR
        if not root.is_dir():
            return []
        return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit())

    def current(self) -> int:
        """The served version; a clear error when the folder holds no bundle."""
        if not self.pointer.exists():
            raise DataError(
                f"{self.run_dir}: no servable model here (missing {self.pointer.name}); "
                "run `shopaug train DATA --model NAME --out RUN_DIR` first"
            )
        text = self.pointer.read_text().strip()
        if not text.isdigit() or not self.version_dir(int(text)).is_dir():
            raise DataError(f"{self.pointer}: points to {text!r}, which is not a version folder")
        return int(text)

    def set_current(self, version: int) -> None:
        """Point ``current`` at ``version`` atomically (write a temporary file, then rename)."""
        tmp = self.pointer.with_name(f".{POINTER_FILE}.{os.getpid()}")
        tmp.write_text(f"{version:04d}\n")
        os.replace(tmp, self.pointer)


@dataclass
class Bundle:
    """One loaded version: manifest, fitted model, catalog, training events and embeddings."""

    path: Path
    manifest: BundleManifest
    model: Recommender
    items: pd.DataFrame
    events: pd.DataFrame
    embeddings: np.ndarray
    search: Any = None

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        """Read a version folder. The search engine keeps its disk-cached item encoder: in a
        service it encodes only new items (queries have their own in-memory encoder), and the
        shared cache lets every worker reuse the vectors the writing worker made."""
        path = Path(path)
        manifest = BundleManifest.model_validate_json((path / "manifest.json").read_text())
        model_cls = MODELS[manifest.model]
        search = None
        if manifest.search:
            from shopaug.search import SearchEngine

            search = SearchEngine.load(path / "search")
        return cls(
            path=path,
            manifest=manifest,
            model=model_cls.load(path / "model.bin"),
            items=pd.read_parquet(path / "items.parquet"),
            events=pd.read_parquet(path / "events.parquet"),
            embeddings=np.load(path / "embeddings.npy"),
            search=search,
        )


def dataset_from_frames(items: pd.DataFrame, events: pd.DataFrame, name: str) -> Dataset:
    """A :class:`Dataset` over a catalog and an event table in arrival order.

    Events keep their order within a user (the log appends in time order); an event naming an
    item outside the catalog is an error that names it, never silently dropped.
    """
    items = items.reset_index(drop=True)
    index = pd.Index(items["item_id"].astype(str))
    item_codes = index.get_indexer(events["item_id"].astype(str))
    if (item_codes < 0).any():
        row = int(np.flatnonzero(item_codes < 0)[0])
        raise DataError(f"event {row}: item {events['item_id'].iloc[row]!r} is not in the catalog")
    user_codes, user_ids = pd.factorize(events["user_id"].astype(str))
    order = np.argsort(user_codes, kind="stable")
    sequences = Sequences.from_rows(
        user_codes[order], item_codes[order], np.asarray(user_ids, dtype=object)
    )
    stamps = pd.to_datetime(events["timestamp"], errors="coerce", utc=True)
    timestamps = stamps.dt.tz_localize(None).to_numpy()[order]
    has_time = not pd.isna(timestamps).all()
    users = pd.DataFrame({"user_index": np.arange(len(user_ids)), "user_id": user_ids})
    return Dataset(
        items=items,
        users=users,
        events=sequences,
        event_types=events["event"].astype(str).to_numpy()[order],
        timestamps=timestamps if has_time else None,
        name=name,
    )


def dataset_events(dataset: Dataset) -> pd.DataFrame:
    """The events of a :class:`Dataset` as a table (one row per event, users' time order)."""
    seq = dataset.events
    timestamps = dataset.timestamps if dataset.timestamps is not None else [None] * seq.n_events
    return pd.DataFrame(
        {
            "user_id": seq.users[seq.row_ids()].astype(str),
            "item_id": dataset.items["item_id"].astype(str).to_numpy()[seq.items],
            "event": np.asarray(dataset.event_types).astype(str),
            "timestamp": pd.to_datetime(pd.Series(timestamps)),
        }
    )


@dataclass
class ServingFit:
    """A model fit for serving, the item embeddings it was given, and how the fit went."""

    model: Recommender
    embeddings: np.ndarray
    seconds: float
    augmentation: dict[str, Any] | None = None


def fit_for_serving(dataset: Dataset, spec: FitSpec) -> ServingFit:
    """Fit ``spec.model`` on ``dataset`` (all events, or a protocol's training rows), with the
    generated samples of ``spec.augment`` mixed in as ``bench rec --augment`` mixes them."""
    from shopaug.workflow import item_side, split_dataset, split_training_data

    side = item_side(dataset, spec.encoder, embed=True)
    if spec.protocol == "none":
        train = TrainData(dataset.events, dataset.n_items, n_users=dataset.n_users, items=side)
    else:
        train = split_training_data(dataset, split_dataset(dataset, spec.protocol), side)
    summary = None
    if spec.augment is not None:
        augmentation = augment_train(train, spec.augment, spec.seed)
        train, summary = augmentation.train, augmentation.summary()
    model = make_model(spec.model, **spec.params)
    started = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - started
    return ServingFit(model, np.asarray(side.embeddings, dtype=np.float32), seconds, summary)


def write_bundle(
    layout: RunLayout,
    dataset: Dataset,
    events: pd.DataFrame,
    fit: ServingFit,
    manifest: dict[str, Any],
    build_search: bool = True,
) -> Path:
    """Write the next version folder whole, then point ``current`` at it; returns its path."""
    version = max(layout.versions(), default=0) + 1
    final = layout.version_dir(version)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    items = dataset.items.drop(columns=["item_index"], errors="ignore").reset_index(drop=True)
    fit.model.save(tmp / "model.bin")
    items.to_parquet(tmp / "items.parquet", index=False)
    events.reset_index(drop=True)[EVENT_COLUMNS].to_parquet(tmp / "events.parquet", index=False)
    np.save(tmp / "embeddings.npy", fit.embeddings.astype(np.float32))
    has_search = build_search and _write_search(items, tmp / "search", manifest.get("encoder"))
    full = BundleManifest(
        version=version,
        n_items=dataset.n_items,
        n_users=dataset.n_users,
        n_events=len(events),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        search=has_search,
        fit_seconds=fit.seconds,
        augmentation=fit.augmentation,
        **manifest,
    )
    (tmp / "manifest.json").write_text(full.model_dump_json(indent=2))
    os.replace(tmp, final)
    layout.set_current(version)
    return final


def _write_search(items: pd.DataFrame, path: Path, encoder: str | None) -> bool:
    """Build and save the search engine if ``shopaug.search`` is installed (else no search)."""
    try:
        from shopaug.search import SearchEngine
    except ImportError:
        return False
    from shopaug.encode.text_encoder import TextEncoder

    engine = SearchEngine.build(items, encoder=TextEncoder(model=encoder))
    engine.save(path)
    return True


def train_bundle(config: TrainConfig, out: Path, on_stage: StageCallback | None = None) -> Path:
    """``shopaug train``: load or ingest the data, fit on it, write version 1 of ``out``."""
    from shopaug.workflow import load_dataset

    notify = notifier(on_stage)
    layout = RunLayout(Path(out))
    if layout.versions():
        raise DataError(f"{out}: already holds model versions; use `shopaug retrain {out}`")
    notify("loading data", 0.0)
    dataset = load_dataset(
        config.data, config.events, config.work_dir, within(notify, 0.0, 0.2, "ingest: ")
    )
    notify(f"fitting {config.model}" + (" on real + generated rows" if config.augment else ""), 0.3)
    fit = fit_for_serving(dataset, config)
    notify("writing bundle", 0.9)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    layout.log_path.touch()
    manifest = {
        **config.model_dump(include=set(FitSpec.model_fields), mode="json"),
        "source": str(config.data),
        "tuning": config.tuning,
        "log_offset": layout.log_path.stat().st_size,
    }
    return write_bundle(
        layout, dataset, dataset_events(dataset), fit, manifest, build_search=config.search
    )


def describe(bundle_dir: Path) -> dict[str, Any]:
    """The manifest of a version folder as a plain mapping (for the CLI's table)."""
    return json.loads((bundle_dir / "manifest.json").read_text())


__all__ = [
    "Bundle",
    "BundleManifest",
    "FitSpec",
    "RunLayout",
    "ServingFit",
    "TrainConfig",
    "dataset_events",
    "dataset_from_frames",
    "fit_for_serving",
    "train_bundle",
    "write_bundle",
]
