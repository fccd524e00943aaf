"""The run's stages and the cache that lets a rerun skip the ones whose inputs did not change.

A stage is a function of its inputs and its slice of the config that fills one output folder.
Its cache key hashes that slice, the keys of the stages it reads and the source code of the
packages it runs (so editing a strategy re-runs augmentation, editing SASRec does not re-ingest).
A stage writes into a temporary folder and renames it into place only when it finished, and a
folder counts only with its ``stage.json``: an interrupted stage leaves nothing a later run trusts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from shopaug.augment import AugmentContext, StrategyRun, concat, generate, make_strategy
from shopaug.augment.samples import GeneratedSequences
from shopaug.data.dataset import Dataset
from shopaug.data.demo_shop import generate_demo_shop, write_demo_shop
from shopaug.data.ingest import IngestSpec, file_sha256, ingest
from shopaug.data.splits import EvalCases, Split
from shopaug.data.store import DatasetStore
from shopaug.encode.text_encoder import Backend, TextEncoder
from shopaug.evaluate.ranking import RankingResult, concat_results, evaluate_model
from shopaug.filter import FilterReport, make_filter
from shopaug.models import TrainData, make_model
from shopaug.models.augmented import Augmentation, AugmentPlan, filter_samples, mix_train
from shopaug.paths import process_alive
from shopaug.pipeline import code_key
from shopaug.pipeline.config import DataSource, DemoSource, RunDirSource
from shopaug.pipeline.executor import Executor, LocalExecutor, chunks, shard_seed, user_shards
from shopaug.progress import StageCallback, notifier
from shopaug.workflow import AugmentedTrain, Experiment, ModelRuns, per_user_frame, run_model
from shopaug.workflow.experiment import Ranker, json_default, summarize
from shopaug.workflow.results import case_slices
from shopaug.workflow.space import SearchSpace
from shopaug.workflow.tune import TrialRecord, TuneConfig, TuneProgress, tune

#: What marks a finished stage folder: the key material it was built from.
DONE = "stage.json"
#: What each stage runs: its key's code part is the source of these and of all they import
#: (:mod:`shopaug.pipeline.code_key`), plus the pipeline's own stage and sharding code.
STAGE_ROOTS: dict[str, tuple[object, ...]] = {
    "ingest": (ingest, generate_demo_shop),
    "tune": (tune,),
    "encode": (Dataset, TextEncoder),
    "augment": (generate, make_strategy, make_filter, filter_samples),
    "train": (run_model, make_model, evaluate_model),
    "evaluate": (summarize, per_user_frame),
}


@cache
def code_version(stage: str) -> str:
    """Hash of the package version and the source the stage runs."""
    return code_key.code_version(STAGE_ROOTS[stage], own=(StageCache, Executor))


def stage_key(stage: str, material: dict[str, Any]) -> str:
    """The cache key: config slice, upstream keys and code version, hashed."""
    blob = json.dumps(
        {"stage": stage, "code": code_version(stage), **material}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class StageRecord:
    """How one stage of a run went: its key and folder, whether it was reused, its time."""

    stage: str
    key: str
    path: Path
    reused: bool
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


class StageCache:
    """Stage folders under ``root/<stage>/<key>``, built atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def run(
        self, stage: str, material: dict[str, Any], build: Callable[[Path], dict[str, Any] | None]
    ) -> StageRecord:
        """The stage's folder: the finished one for this key, or built now by ``build(tmp)``."""
        started = time.perf_counter()
        key = stage_key(stage, material)
        final = self.root / stage / key
        if (final / DONE).exists():
            info = json.loads((final / DONE).read_text()).get("info", {})
            return StageRecord(stage, key, final, True, time.perf_counter() - started, info)
        self._remove_abandoned(stage, key)
        tmp = self.root / stage / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir(parents=True)
        try:
            info = build(tmp) or {}
            record = {"stage": stage, "key": key, "material": material, "info": info}
            (tmp / DONE).write_text(json.dumps(record, indent=2, default=str))
            if final.exists():  # a folder without stage.json: an older interrupted attempt
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return StageRecord(stage, key, final, False, time.perf_counter() - started, info)

    def _remove_abandoned(self, stage: str, key: str) -> None:
        """Temporary folders of this key left by a process that no longer runs (killed hard)."""
        for tmp in (self.root / stage).glob(f".{key}.*.tmp"):
            pid = tmp.name.split(".")[2]
            if not pid.isdigit() or not process_alive(int(pid)):
                shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# ingest
# ----------------------------------------------------------------------------------------------


def ingest_spec(source: DataSource, folder: Path) -> IngestSpec:
    """The ingest spec of a file source; the demo shop is generated into ``folder/source``."""
    if isinstance(source, DemoSource):
        return IngestSpec(**write_demo_shop(generate_demo_shop(source.shop), folder / "source"))
    if source.source == "amazon":
        return IngestSpec.amazon(source.path)
    return IngestSpec(
        items=source.items,
        interactions=source.interactions,
        queries=source.queries,
        rename=source.rename,
    )


def source_material(source: DataSource) -> dict[str, Any]:
    """What identifies the input data: the source config and the hash of every input file."""
    material: dict[str, Any] = {"source": source.model_dump(mode="json")}
    if isinstance(source, DemoSource):
        return material  # generated: the config is the data
    if isinstance(source, RunDirSource):
        manifest = DatasetStore(source.path).manifest()
        material["manifest"] = hashlib.sha256(
            json.dumps(manifest, sort_keys=True, default=str).encode()
        ).hexdigest()
        return material
    spec = ingest_spec(source, Path())
    files = [p for p in (spec.items, spec.interactions, spec.queries) if p is not None]
    material["files"] = {str(p): file_sha256(p) for p in files}
    return material


def run_ingest(source: DataSource, cache: StageCache) -> StageRecord:
    """Validate, clean and store the data; a ready run folder is used where it is."""
    material = source_material(source)
    if isinstance(source, RunDirSource):
        DatasetStore(source.path).require()
        return StageRecord(
            "ingest", stage_key("ingest", material), source.path, True, 0.0, material
        )

    def build(folder: Path) -> dict[str, Any]:
        report = ingest(ingest_spec(source, folder), folder)
        return {"n_users": report.n_users, "rejected": report.rejected, **material}

    return cache.run("ingest", material, build)


# ----------------------------------------------------------------------------------------------
# tune
# ----------------------------------------------------------------------------------------------

#: The tune stage's output: the ``plan.yaml`` of ``shopaug tune``.
PLAN_FILE = "plan.yaml"


class _StageProgress(TuneProgress):
    """Trials as the run's progress callback sees stages."""

    def __init__(self, on_stage: StageCallback | None, trials: int) -> None:
        self.notify, self.trials, self.done = notifier(on_stage), trials, 0

    def trial_started(self, number: int, text: str) -> None:
        self.notify(f"trial {number}: {text}", self.done / self.trials)

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        self.done += record.state != "repeat"


def run_tune(
    data: StageRecord,
    config: TuneConfig,
    space: SearchSpace,
    cache: StageCache,
    on_stage: StageCallback | None = None,
) -> StageRecord:
    """``plan.yaml``: the plan chosen on validation, with every trial (see ``shopaug tune``).

    A time limit makes the number of trials depend on the machine, so a run with one is only
    reused for the same limit, not reproduced exactly elsewhere.
    """
    material = {
        "data": data.key,
        "tune": config.model_dump(mode="json", exclude={"data", "work_dir"}),
        "space": space.model_dump(mode="json"),
    }

    def build(folder: Path) -> dict[str, Any]:
        plan = tune(config, space, _StageProgress(on_stage, config.trials))
        plan.save(folder / PLAN_FILE)
        return {"chosen_trial": plan.chosen_trial, "verdict": plan.verdict}

    return cache.run("tune", material, build)


# ----------------------------------------------------------------------------------------------
# encode
# ----------------------------------------------------------------------------------------------


@cache
def _encoder(model: str | None, batch_size: int, backend: Backend, max_length: int | None) -> Any:
    """One text encoder per process and setting, so batches do not reload the model."""
    return TextEncoder(model, batch_size, backend=backend, max_length=max_length)


def encode_texts(encoder: dict[str, Any], texts: list[str]) -> np.ndarray:
    """One batch of texts (runs on an executor worker)."""
    settings = (encoder["model"], encoder["batch_size"], encoder["backend"], encoder["max_length"])
    return _encoder(*settings).encode(texts)


def run_encode(
    data: StageRecord,
    encoder: dict[str, Any],
    executor: Executor,
    shards: int,
    cache: StageCache,
) -> StageRecord:
    """``embeddings.npy``: the item texts' embeddings, in batches over the executor."""
    material = {"data": data.key, "encoder": encoder}

    def build(folder: Path) -> dict[str, Any]:
        texts = Dataset.load(data.path).item_texts()
        parts = executor.map(encode_texts, [texts[s] for s in chunks(len(texts), shards)], encoder)
        embeddings = np.concatenate(parts).astype(np.float32)
        np.save(folder / "embeddings.npy", embeddings)
        return {"items": len(texts), "dim": int(embeddings.shape[1])}

    return cache.run("encode", material, build)


def load_embeddings(encode: StageRecord | None) -> np.ndarray | None:
    return None if encode is None else np.load(encode.path / "embeddings.npy")


# ----------------------------------------------------------------------------------------------
# augment
# ----------------------------------------------------------------------------------------------


@dataclass
class ShardJob:
    """One user shard of one seed: its rows (indices into the training rows) and seed."""

    rows: np.ndarray
    seed: int


def generate_shard(
    shared: tuple[AugmentContext, AugmentPlan], job: ShardJob
) -> tuple[GeneratedSequences, list[StrategyRun]]:
    """The plan's strategies on one user shard, with the full context's neighbour tables.

    ``source_row`` of the samples is mapped back to the row numbers of the whole training set.
    """
    context, plan = shared
    samples, runs = generate(plan.build_strategies(job.seed), context.for_rows(job.rows))
    return replace(samples, source_row=job.rows[samples.source_row]), runs


def sharded_samples(
    train: TrainData, plan: AugmentPlan, seed: int, executor: Executor, n_shards: int
) -> tuple[GeneratedSequences, list[StrategyRun]]:
    """All shards' samples in shard order, and one timing record per strategy (summed)."""
    side = train.items
    context = AugmentContext(
        train.sequences,
        train.n_items,
        side.embeddings if side else None,
        catalog=side.catalog if side else None,
    )
    context.prepare()
    jobs = [
        ShardJob(rows, shard_seed(seed, i, n_shards))
        for i, rows in enumerate(user_shards(train.sequences.users, n_shards))
    ]
    outputs = executor.map(generate_shard, jobs, (context, plan))
    shard_runs = [run for _, runs in outputs for run in runs]
    runs = [
        StrategyRun.combine(name, [r for r in shard_runs if r.name == name])
        for name in plan.strategies
    ]
    return concat([samples for samples, _ in outputs]), runs


def run_augment(
    upstream: dict[str, str],
    train: TrainData,
    plan: AugmentPlan,
    seeds: int,
    executor: Executor,
    shards: int,
    cache: StageCache,
) -> StageRecord:
    """Per seed, the kept samples (``samples-<seed>.parquet``) and what each step did."""
    material = {**upstream, "plan": plan.model_dump(mode="json"), "seeds": seeds, "shards": shards}

    def build(folder: Path) -> dict[str, Any]:
        counts = {}
        for seed in range(seeds):
            samples, runs = sharded_samples(train, plan, seed, executor, shards)
            kept, reports = filter_samples(train, samples, plan)
            kept.write(folder / f"samples-{seed}.parquet")
            log = {"runs": [asdict(r) for r in runs], "filters": [asdict(r) for r in reports]}
            (folder / f"steps-{seed}.json").write_text(json.dumps(log, default=str))
            counts[str(seed)] = kept.counts_by_origin()
        return {"kept_by_seed": counts}

    return cache.run("augment", material, build)


def load_augmented(record: StageRecord, train: TrainData, plan: AugmentPlan) -> AugmentedTrain:
    """The augmented training data of every seed, read back from the augment stage."""
    augmented = AugmentedTrain(train, plan)
    for path in sorted(record.path.glob("samples-*.parquet")):
        seed = int(path.stem.removeprefix("samples-"))
        kept = GeneratedSequences.read(path)
        log = json.loads((record.path / f"steps-{seed}.json").read_text())
        augmented.cache[seed] = Augmentation(
            mix_train(train, kept, plan),
            kept,
            [StrategyRun(**r) for r in log["runs"]],
            [FilterReport(**r) for r in log["filters"]],
        )
    return augmented


# ----------------------------------------------------------------------------------------------
# train (fit and test every seed of one model variant)
# ----------------------------------------------------------------------------------------------


def rank_shard(shared: tuple[Any, EvalCases, tuple[int, ...]], rows: np.ndarray) -> RankingResult:
    """Full-catalog ranking of some of the test cases (runs on an executor worker)."""
    model, cases, ks = shared
    return evaluate_model(model, cases.select(rows), ks=ks)


def sharded_ranker(executor: Executor, n_shards: int) -> Ranker:
    """Batch scoring over the executor: the test cases cut into ``n_shards`` contiguous pieces,
    each ranked where the executor puts it, joined back in order. Every case is ranked on its own,
    so the result is the same as :func:`evaluate_model` in one piece, wherever the shards ran."""

    def rank(model: Any, cases: EvalCases, *, ks: tuple[int, ...]) -> RankingResult:
        if n_shards == 1 and isinstance(executor, LocalExecutor):
            return evaluate_model(model, cases, ks=ks)
        started = time.perf_counter()
        positions = np.arange(len(cases))
        shards = [positions[piece] for piece in chunks(len(cases), n_shards)]
        parts = executor.map(rank_shard, shards, (model, cases, tuple(ks)))
        return concat_results(parts, time.perf_counter() - started)

    return rank


def run_train(
    upstream: dict[str, str],
    name: str,
    split: Split,
    train: TrainData,
    bench: Experiment,
    cache: StageCache,
    augmented: Callable[[], AugmentedTrain] | None = None,
    on_stage: StageCallback | None = None,
    rank: Ranker = evaluate_model,
) -> StageRecord:
    """Fit ``name`` once per seed and rank every test case: ``result-<i>.npz`` and ``runs.json``.

    ``augmented`` (read lazily, only if the stage has to run) trains on real + generated rows;
    ``rank`` scores the test cases (:func:`sharded_ranker` puts that on the executor). Neither
    the executor nor the number of shards is part of the key: they change the time, not the result.
    """
    params = bench.params.get(name, {})
    material = {
        **upstream,
        "model": name,
        "params": params,
        "seeds": bench.seeds,
        "ks": bench.ks,
        "augmented": augmented is not None,
    }

    def build(folder: Path) -> dict[str, Any]:
        variant = augmented() if augmented is not None else None
        runs = run_model(name, params, split, train, bench, on_stage, variant, rank)
        runs.save(folder)
        return {"label": runs.label, "fit_seconds": sum(runs.fit_seconds)}

    return cache.run("train", material, build)


# ----------------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------------


def run_evaluate(
    trained: list[StageRecord],
    split: Split,
    train: TrainData,
    bench: Experiment,
    cache: StageCache,
) -> StageRecord:
    """``results.json`` (metrics per slice with CIs, comparisons) and ``per_user.parquet``."""
    material = {"train": [r.key for r in trained], "n_resamples": bench.n_resamples}

    def build(folder: Path) -> dict[str, Any]:
        all_runs = [ModelRuns.load(r.path) for r in trained]
        slices = case_slices(split, train)
        outcome = summarize(all_runs, split, train, bench, slices)
        (folder / "results.json").write_text(json.dumps(outcome, indent=2, default=json_default))
        per_user_frame(all_runs, slices).to_parquet(folder / "per_user.parquet")
        return {"models": [r.label for r in all_runs]}

    return cache.run("evaluate", material, build)
