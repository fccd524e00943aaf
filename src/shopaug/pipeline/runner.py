"""``shopaug run``: the stages of one config in order, each reused from the cache when it can be.

ingest -> [tune] -> encode -> augment -> train (one stage per model and variant) -> evaluate -> report.
The split is recomputed on every run (it is a fast, seeded function of the ingested data), and
everything the run produced is written to the run folder: ``results.json``, ``per_user.parquet``,
``plan.yaml`` (with a tune section), ``report/`` and ``run.json`` (the stages with their keys, reuse and times), so ``shopaug
compare`` can read two run folders without the cache.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from shopaug.pipeline.config import RunConfig
from shopaug.pipeline.executor import make_executor
from shopaug.pipeline.stages import (
    PLAN_FILE,
    StageCache,
    StageRecord,
    load_augmented,
    load_embeddings,
    run_augment,
    run_encode,
    run_evaluate,
    run_ingest,
    run_train,
    run_tune,
    sharded_ranker,
)
from shopaug.progress import StageCallback, notifier, shares, within
from shopaug.workflow import prepare_training
from shopaug.workflow.tune import TunedPlan

#: Files of the evaluate stage copied into the run folder.
RUN_FILES = ("results.json", "per_user.parquet")


@dataclass
class RunOutcome:
    """What a run did and produced (everything also lands in the run folder)."""

    config: RunConfig
    stages: list[StageRecord] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None
    tracking_run_id: str | None = None
    seconds: float = 0.0
    #: The tune stage's plan (None without a tune section).
    tuned: TunedPlan | None = None

    @property
    def data_dir(self) -> Path:
        return next(s.path for s in self.stages if s.stage == "ingest")

    def augment_counts(self) -> dict[str, dict[str, int]]:
        """Kept samples by strategy, per seed (empty without augmentation)."""
        record = next((s for s in self.stages if s.stage == "augment"), None)
        return record.info.get("kept_by_seed", {}) if record else {}


def run_pipeline(config: RunConfig, on_stage: StageCallback | None = None) -> RunOutcome:
    """Execute the config's stages; ``on_stage(label, fraction)`` follows the progress."""
    notify = notifier(on_stage)
    started = time.perf_counter()
    cache = StageCache(config.cache)
    executor = make_executor(config.executor)
    outcome = RunOutcome(config)
    stages = outcome.stages

    notify("ingest", 0.0)
    data = run_ingest(config.data, cache)
    stages.append(data)
    tuned = None
    if config.tune is not None:
        notify("tune", 0.05)
        tuning = run_tune(
            data, config.tune_config(data.path), config.tune.search_space(), cache,
            within(notify, 0.05, 0.1, "tune "),
        )  # fmt: skip
        stages.append(tuning)
        tuned = TunedPlan.load(tuning.path / PLAN_FILE)
        outcome.tuned = tuned
        config.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tuning.path / PLAN_FILE, config.out / PLAN_FILE)
    experiment = config.experiment(data.path, tuned)

    notify("split", 0.1)
    split, train = prepare_training(experiment.model_copy(update={"embed_items": False}))
    upstream = {"data": data.key, "split": config.split.model_dump(mode="json")}
    if config.encoder.enabled:
        notify("encode", 0.15)
        encoder = config.encoder.model_dump(mode="json", exclude={"enabled"})
        encoded = run_encode(data, encoder, executor, config.executor.shards, cache)
        stages.append(encoded)
        assert train.items is not None
        train = replace(train, items=replace(train.items, embeddings=load_embeddings(encoded)))
        upstream["encode"] = encoded.key

    plan = experiment.augment
    augment: StageRecord | None = None
    if plan is not None:
        notify("augment", 0.25)
        seeds, shards = config.evaluation.seeds, config.executor.shards
        augment = run_augment(upstream, train, plan, seeds, executor, shards, cache)
        stages.append(augment)

    ranker = sharded_ranker(executor, config.executor.shards)
    jobs = experiment.jobs(with_augmented=augment is not None)
    trained = []
    for (label, name, with_aug), progress in zip(
        jobs, shares(notify, 0.3, 0.6, len(jobs), prefix="train ")
    ):
        progress(label, 0.0)
        keys, lazily = upstream, None
        if with_aug and augment is not None:
            keys = {**upstream, "augment": augment.key}
            lazily = partial(load_augmented, augment, train, plan)
        record = run_train(keys, name, split, train, experiment, cache, lazily, progress, ranker)
        record.stage = f"train {record.info.get('label', label)}"
        trained.append(record)
        stages.append(record)

    notify("evaluate", 0.92)
    evaluated = run_evaluate(trained, split, train, experiment, cache)
    stages.append(evaluated)
    outcome.results = json.loads((evaluated.path / "results.json").read_text())
    publish(evaluated, data, config.out)

    if config.report.enabled:
        notify("report", 0.96)
        outcome.report = write_run_report(outcome, config)
    outcome.seconds = time.perf_counter() - started
    if config.tracking.enabled:
        notify("tracking", 0.98)
        from shopaug.pipeline.tracking import log_run

        logged = time.perf_counter()
        outcome.tracking_run_id = log_run(outcome)
        seconds = time.perf_counter() - logged
        outcome.stages.append(
            StageRecord("tracking", outcome.tracking_run_id, config.out, False, seconds)
        )
        outcome.seconds = time.perf_counter() - started
    write_run_record(outcome)
    return outcome


def publish(evaluated: StageRecord, data: StageRecord, out: Path) -> None:
    """Copy the evaluation into the run folder, which outlives (and does not need) the cache,
    and link the ingested store (and generated source files) as ``OUT/data`` and ``OUT/source``,
    so ``shopaug data stats OUT`` reads the run's data."""
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        shutil.copyfile(evaluated.path / name, out / name)
    for name in ("data", "source"):
        target, link = (data.path / name).resolve(), out / name
        if not target.exists() or link.resolve() == target:
            continue
        if link.is_symlink():
            link.unlink()
        if not link.exists():  # a real folder of the user's is never replaced
            link.symlink_to(target, target_is_directory=True)


def write_run_report(outcome: RunOutcome, config: RunConfig) -> Path:
    """The Markdown/HTML report of the run's results (timed as a stage of its own)."""
    from shopaug.evaluate.report import write_report

    started = time.perf_counter()
    title = config.report.title or f"shopaug run {config.name}: protocol {config.split.protocol}"
    results = outcome.results
    _, html = write_report(
        results["results"],
        config.out / "report",
        title=title,
        comparisons=results.get("comparisons"),
    )
    seconds = time.perf_counter() - started
    outcome.stages.append(StageRecord("report", "-", html.parent, False, seconds))
    return html


def write_run_record(outcome: RunOutcome) -> Path:
    """``run.json``: the config, stage keys, reuse and times, and the tracking run id."""
    path = outcome.config.out / "run.json"
    record = {
        "config": outcome.config.model_dump(mode="json"),
        "stages": [
            {
                "stage": s.stage,
                "key": s.key,
                "path": str(s.path),
                "reused": s.reused,
                "seconds": round(s.seconds, 3),
            }
            for s in outcome.stages
        ],
        "seconds": outcome.seconds,
        "tracking_run_id": outcome.tracking_run_id,
        "tracking_uri": outcome.config.tracking_uri() if outcome.config.tracking.enabled else None,
    }
    path.write_text(json.dumps(record, indent=2))
    return path
