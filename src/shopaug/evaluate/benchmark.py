"""``shopaug bench rec``: one benchmark protocol, several models, several training seeds.

The split is fixed by the protocol (its random draws use ``split_seed``, 0 as BENCHMARK.md says);
only the models' training seeds vary. Models are chosen on validation inside ``fit`` (early
stopping) and judged once on test. The result JSON carries per-slice metrics with their spread
over seeds and a bootstrap CI over test users, and every model is compared with the first one by a
paired bootstrap of the per-user difference.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopaug.data.dataset import Dataset
from shopaug.data.errors import DataError
from shopaug.data.ingest import IngestSpec, ingest
from shopaug.data.splits import Split, make_split
from shopaug.data.store import DatasetStore
from shopaug.evaluate.metrics import beyond_accuracy, item_popularity
from shopaug.evaluate.ranking import RankingResult, evaluate_model, slice_masks
from shopaug.evaluate.stats import compare_runs, summarize_runs
from shopaug.models import (
    MODELS,
    ItemSide,
    Recommender,
    TrainData,
    check_model_params,
    make_model,
)
from shopaug.models.augmented import Augmentation, AugmentPlan, augment_train

StageCallback = Callable[[str, float], None]
#: Ranks a fitted model's test cases: :func:`evaluate_model` itself, or a sharded version of it
#: (the pipeline spreads the batches over its executor); called as ``rank(model, cases, ks=...)``.
Ranker = Callable[..., RankingResult]
#: Hyper-parameter names under which models take their training seed.
SEED_PARAMS = ("seed", "random_state")
#: Metrics on which every model is compared with the first (paired bootstrap).
COMPARED_METRICS = ("ndcg@10", "recall@10", "recall@20", "mrr")


class RecBenchConfig(BaseModel):
    """Everything that decides a recommendation benchmark's numbers; saved with the results."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    protocol: Literal["W", "C", "S", "T"] = "W"
    #: Registry names, or ``LABEL=NAME`` to run one model twice under different parameters
    #: (``first-order=markov`` with ``params={"first-order": {"order": 1}}``).
    models: list[str] = Field(min_length=1)
    #: Hyper-parameters by label (the name itself for an entry without a label).
    params: dict[str, dict[str, Any]] = {}
    seeds: int = Field(3, ge=1)
    split_seed: int = 0
    ks: tuple[int, ...] = (10, 20, 50)
    events: list[str] | None = None
    collapse_repeats: bool = False
    encoder: str | None = None
    embed_items: bool = True
    n_resamples: int = Field(1000, ge=100)
    work_dir: Path = Path("runs/bench")
    augment: AugmentPlan | None = None

    @field_validator("models")
    @classmethod
    def _known_and_distinct(cls, models: list[str]) -> list[str]:
        try:
            model_labels(models)
        except ValueError as exc:
            raise ValueError(f"model {exc}") from None
        return models

    @model_validator(mode="after")
    def _params_fit_their_models(self) -> RecBenchConfig:
        """Parameters are checked (and coerced) by each model's schema here, before any data is
        read, so a typo does not surface after an hour of ingest and training."""
        labels = model_labels(self.models)
        for label in self.params:
            if label not in labels:
                raise ValueError(f"params: {label!r} is not among the models {list(labels)}")
        self.params = {
            label: check_model_params(labels[label], params, label)
            for label, params in self.params.items()
        }
        return self


@dataclass
class ModelRuns:
    """One model's test results over seeds, with the time its fits and evaluations took.

    ``name`` labels the results; ``estimator`` is the registry name (None in runs saved before
    labels existed, whose name is the registry name).
    """

    name: str
    params: dict[str, Any]
    estimator: str | None = None
    augmented: bool = False
    results: list[RankingResult] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    augmentation: list[dict[str, Any]] = field(default_factory=list)
    valid_scores: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name}+aug" if self.augmented else self.name


def label_and_name(entry: str) -> tuple[str, str]:
    """``"first-order=markov"`` → ``("first-order", "markov")``; a bare name labels itself.

    Labels let one benchmark compare configurations of the same model on the same split, so
    their paired differences come from one harness.
    """
    label, sep, name = entry.partition("=")
    label, name = label.strip(), name.strip()
    if not sep:
        return label, label
    if not label or not name:
        raise ValueError(f"{entry!r}: expected NAME or LABEL=NAME")
    return label, name


def model_labels(entries: list[str]) -> dict[str, str]:
    """Label -> registry name of every model entry; an unknown name or a label used twice is
    an error naming the entry, since parameters and results are keyed by label."""
    labels: dict[str, str] = {}
    for entry in entries:
        label, name = label_and_name(entry)
        if name not in MODELS:
            raise ValueError(f"{entry!r}: unknown {name!r}; known models: {', '.join(MODELS)}")
        if label in labels:
            raise ValueError(f"{entry!r}: label {label!r} is used twice")
        labels[label] = name
    return labels


def load_dataset(config: RecBenchConfig, on_stage: StageCallback | None = None) -> Dataset:
    """A run folder is read as it is; an Amazon folder is ingested once into ``work_dir``."""
    data = config.data
    if DatasetStore(data).exists():
        return Dataset.load(data, events=tuple(config.events) if config.events else None)
    if not data.is_dir():
        raise DataError(f"{data}: not a run folder (no data/ingest.json) nor a data folder")
    run_dir = config.work_dir / f"data-{data.resolve().name}"
    try:
        spec = IngestSpec.amazon(data)
    except DataError as exc:
        raise DataError(f"{data}: not a run folder (no data/ingest.json) and {exc}") from exc
    if not _ingested_from(run_dir, spec):
        ingest(spec, run_dir, on_stage=on_stage)
    return Dataset.load(run_dir, events=tuple(config.events) if config.events else None)


def _ingested_from(run_dir: Path, spec: IngestSpec) -> bool:
    store = DatasetStore(run_dir)
    return store.exists() and store.manifest().get("spec") == spec.model_dump(mode="json")


def item_side(dataset: Dataset, encoder: str | None, embed: bool = True) -> ItemSide:
    """Texts, leaf categories and (if ``embed``) text-encoder embeddings of every item.

    Embeddings feed content-aware models and the diversity measure; they are cached on disk, so
    only the first run on a catalog pays for encoding.
    """
    texts = dataset.item_texts()
    embeddings = None
    if embed:
        from shopaug.encode.text_encoder import TextEncoder

        embeddings = TextEncoder(model=encoder).encode(texts)
    return ItemSide(
        texts=texts,
        categories=dataset.item_categories(),
        embeddings=embeddings,
        catalog=dataset.catalog(),
    )


def model_seeds(model: Recommender, seeds: int) -> list[int | None]:
    """Seeds to train with: one run for models without a seed, since reruns would be identical."""
    if any(p in model.get_params() for p in SEED_PARAMS):
        return list(range(seeds))
    return [None]


def _with_seed(name: str, params: dict[str, Any], seed: int | None) -> Recommender:
    model = make_model(name, **params)
    if seed is not None:
        key = next(p for p in SEED_PARAMS if p in model.get_params())
        model = make_model(name, **{**params, key: seed})
    return model


def run_model(
    name: str,
    params: dict[str, Any],
    split: Split,
    train: TrainData,
    config: RecBenchConfig,
    on_stage: StageCallback | None = None,
    augmented: AugmentedTrain | None = None,
    rank: Ranker = evaluate_model,
    label: str | None = None,
) -> ModelRuns:
    """Fit and test ``name`` once per training seed (once only for deterministic models).

    With ``augmented``, each seed trains on the real rows plus the samples generated with that
    seed (the same samples for every model of the run). ``rank`` scores the test cases;
    ``label`` names the results (default: ``name``).
    """
    notify = on_stage or (lambda stage, fraction: None)
    runs = ModelRuns(
        label or name,
        params,
        estimator=name,
        augmented=augmented is not None,
    )
    seeds = model_seeds(make_model(name, **params), config.seeds)
    for i, seed in enumerate(seeds):
        notify(f"{runs.label}: fit (seed {seed})", i / len(seeds))
        model = _with_seed(name, params, seed)
        data = train
        if augmented is not None:
            notify(f"{runs.label}: augment (seed {seed})", i / len(seeds))
            outcome = augmented.for_seed(seed or 0)
            data = outcome.train
            runs.augmentation.append(outcome.summary())
        started = time.perf_counter()
        model.fit(data)
        runs.fit_seconds.append(time.perf_counter() - started)
        if getattr(model, "best_score_", None) is not None:
            # Early-stopped models keep their best validation NDCG@10: the only figure a
            # hyper-parameter or augmentation choice may be made on.
            runs.valid_scores.append(float(model.best_score_))
        notify(f"{runs.label}: test (seed {seed})", (i + 0.5) / len(seeds))
        result = rank(model, split.test, ks=config.ks)
        runs.results.append(result)
        runs.eval_seconds.append(result.seconds)
    if len(seeds) < config.seeds:
        # A deterministic model gives the same result for every seed: repeat it, so that it
        # pairs with seeded models and its spread over seeds is honestly zero.
        runs.results *= config.seeds
    return runs


@dataclass
class AugmentedTrain:
    """Augmented training data per seed, made once and shared by the models of a run."""

    train: TrainData
    plan: AugmentPlan
    cache: dict[int, Augmentation] = field(default_factory=dict)

    def for_seed(self, seed: int) -> Augmentation:
        if seed not in self.cache:
            self.cache[seed] = augment_train(self.train, self.plan, seed)
        return self.cache[seed]


def summarize_model(
    runs: ModelRuns, split: Split, train: TrainData, config: RecBenchConfig
) -> dict[str, Any]:
    """The benchmark JSON of one model (the shape the issue and the report expect)."""
    popularity = item_popularity(train.sequences, split.n_items)
    cold = split.cold_mask() if len(split.cold_items) else None
    masks = slice_masks(split.test.targets, popularity, cold)
    metrics = summarize_runs(runs.results, masks, config.ks, n_resamples=config.n_resamples)
    embeddings = train.items.embeddings if train.items else None
    beyond = [
        beyond_accuracy(r.top_items, split.n_items, popularity, len(train.sequences), embeddings)
        for r in runs.results
    ]
    return {
        "model": runs.label,
        "protocol": config.protocol,
        "metrics": metrics,
        "beyond": {k: float(np.mean([b[k] for b in beyond])) for k in beyond[0]},
        "seconds": float(sum(runs.fit_seconds) + sum(runs.eval_seconds)),
        "fit_seconds": runs.fit_seconds,
        "eval_seconds": runs.eval_seconds,
        "n_test_users": len(split.test),
        "valid_ndcg@10": runs.valid_scores,
        "augmentation": runs.augmentation,
        "config": {
            **config.model_dump(mode="json", exclude={"params", "models"}),
            "estimator": runs.estimator or runs.name,
            "params": runs.params,
            "split": split.summary(),
        },
    }


def compare_models(
    all_runs: list[ModelRuns], split: Split, train: TrainData, config: RecBenchConfig
) -> list[dict[str, Any]]:
    """Each model against the first, per slice and metric: paired bootstrap over test users."""
    popularity = item_popularity(train.sequences, split.n_items)
    cold = split.cold_mask() if len(split.cold_items) else None
    masks = slice_masks(split.test.targets, popularity, cold)
    base = all_runs[0]
    out = []
    for other in all_runs[1:]:
        for slice_name, mask in masks.items():
            if not mask.any():
                continue
            for metric in COMPARED_METRICS:
                r = compare_runs(
                    other.results, base.results, metric, mask, n_resamples=config.n_resamples
                )
                out.append(
                    {
                        "a": other.label,
                        "b": base.label,
                        "slice": slice_name,
                        "metric": metric,
                        "diff": r.mean_diff,
                        "ci": [r.ci_low, r.ci_high],
                        "p_value": r.p_value,
                    }
                )
    return out


def prepare_training(
    config: RecBenchConfig, before_encoding: Callable[[], None] | None = None
) -> tuple[Split, TrainData]:
    """The protocol's split of the data and the training data (with item side) it allows."""
    dataset = load_dataset(config)
    sequences = dataset.sequences(min_length=3, collapse_repeats=config.collapse_repeats)
    timestamps = dataset.sequence_timestamps(min_length=3, collapse_repeats=config.collapse_repeats)
    split = make_split(config.protocol, sequences, dataset.n_items, config.split_seed, timestamps)
    if before_encoding:
        before_encoding()
    train = TrainData(
        split.train,
        dataset.n_items,
        split.train_user_index,
        dataset.n_users,
        item_side(dataset, config.encoder, config.embed_items),
        valid=split.valid,
    )
    return split, train


def run_rec_benchmark(
    config: RecBenchConfig, on_stage: StageCallback | None = None
) -> dict[str, Any]:
    """Run the whole benchmark; returns ``{"results": [per model], "comparisons": [...]}``."""
    notify = on_stage or (lambda stage, fraction: None)
    started = time.perf_counter()
    notify("loading data", 0.0)
    split, train = prepare_training(config, lambda: notify("encoding item texts", 0.05))
    variants: list[AugmentedTrain | None] = [None]
    if config.augment is not None:
        variants.append(AugmentedTrain(train, config.augment))
    jobs = [(entry, variant) for entry in config.models for variant in variants]
    all_runs = []
    for i, (entry, variant) in enumerate(jobs):
        share = 0.9 / len(jobs)

        def progress(stage: str, fraction: float, i: int = i, share: float = share) -> None:
            notify(stage, 0.1 + share * (i + fraction))

        label, name = label_and_name(entry)
        params = config.params.get(label, {})
        all_runs.append(
            run_model(name, params, split, train, config, progress, variant, label=label)
        )
    notify("summarizing", 0.99)
    results = [summarize_model(r, split, train, config) for r in all_runs]
    return {
        "results": results,
        "comparisons": compare_models(all_runs, split, train, config),
        "seconds": time.perf_counter() - started,
    }


def write_results(outcome: dict[str, Any], out: Path) -> Path:
    """One model: the per-model JSON itself; several: ``{"models": [...], "comparisons": [...]}``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    results = outcome["results"]
    payload = (
        results[0]
        if len(results) == 1
        else {"models": results, "comparisons": outcome["comparisons"]}
    )
    out.write_text(json.dumps(payload, indent=2, default=_json_default))
    return out


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
