"""An experiment: several models (and their ``+aug`` variants) fit per seed on one protocol's
training rows and ranked on its test cases.

The split is fixed by the protocol (its random draws use ``split_seed``, 0 as BENCHMARK.md says);
only the models' training seeds vary. Models are chosen on validation inside ``fit`` (early
stopping) and judged once on test. ``shopaug bench rec`` runs :func:`run_experiment` in one go;
``shopaug run`` runs the same :func:`run_model` per stage so it can cache each one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from shopaug.data.splits import Split
from shopaug.evaluate.ranking import RankingResult, evaluate_model
from shopaug.models import (
    MODELS,
    EarlyStopping,
    Recommender,
    TrainData,
    check_model_params,
    make_model,
)
from shopaug.models.augmented import Augmentation, AugmentPlan, augment_train
from shopaug.progress import StageCallback, notifier, shares
from shopaug.workflow.results import Slices, case_slices, compare_models, summarize_model
from shopaug.workflow.setup import DataSetup, prepare_training

#: Ranks a fitted model's test cases: :func:`evaluate_model` itself, or a sharded version of it
#: (the pipeline spreads the batches over its executor); called as ``rank(model, cases, ks=...)``.
Ranker = Callable[..., RankingResult]
#: Hyper-parameter names under which models take their training seed.
SEED_PARAMS = ("seed", "random_state")


class Experiment(DataSetup):
    """Everything that decides an experiment's numbers; saved with the results."""

    #: Registry names, or ``LABEL=NAME`` to run one model twice under different parameters
    #: (``first-order=markov`` with ``params={"first-order": {"order": 1}}``).
    models: list[str] = Field(min_length=1)
    #: Hyper-parameters by label (the name itself for an entry without a label).
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    seeds: int = Field(3, ge=1)
    ks: tuple[int, ...] = (10, 20, 50)
    n_resamples: int = Field(1000, ge=100)
    augment: AugmentPlan | None = None
    #: Labels of the models also trained with ``augment`` (None: all of them). A plan is chosen
    #: for one model (``shopaug tune``); the others need not pay for training twice.
    augmented_models: list[str] | None = None

    @field_validator("models")
    @classmethod
    def _known_and_distinct(cls, models: list[str]) -> list[str]:
        try:
            model_labels(models)
        except ValueError as exc:
            raise ValueError(f"model {exc}") from None
        return models

    @model_validator(mode="after")
    def _params_fit_their_models(self) -> Experiment:
        """Parameters are checked (and coerced) by each model's schema here, before any data is
        read, so a typo does not surface after an hour of ingest and training."""
        labels = model_labels(self.models)
        for label in [*self.params, *(self.augmented_models or [])]:
            if label not in labels:
                raise ValueError(f"{label!r} is not among the models {list(labels)}")
        self.params = {
            label: check_model_params(labels[label], params, label)
            for label, params in self.params.items()
        }
        return self

    def jobs(self, with_augmented: bool) -> list[tuple[str, str, bool]]:
        """``(label, registry name, augmented)`` of every model run, in report order."""
        chosen = self.augmented_models
        return [
            (label, name, augmented)
            for label, name in model_labels(self.models).items()
            for augmented in (False, True)
            if not augmented or (with_augmented and (chosen is None or label in chosen))
        ]


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
    #: Epoch of the best validation score per seed (None for models without epochs).
    best_epochs: list[int | None] = field(default_factory=list)
    #: Per seed, what the fit chose on validation besides the epoch (a blend's weights).
    valid_choices: list[dict[str, Any]] = field(default_factory=list)
    #: Per seed, the model's records per epoch (epoch, loss, valid_ndcg10); empty without epochs.
    training_curves: list[list[dict[str, float]]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name}+aug" if self.augmented else self.name

    def save(self, folder: Path) -> None:
        """``runs.json`` (everything but the results) and ``result-<i>.npz`` per seed."""
        for i, result in enumerate(self.results):
            result.save(folder / f"result-{i}.npz")
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "results"}
        (folder / "runs.json").write_text(json.dumps(meta, default=str))

    @classmethod
    def load(cls, folder: Path) -> ModelRuns:
        meta = json.loads((folder / "runs.json").read_text())
        paths = sorted(folder.glob("result-*.npz"), key=lambda p: int(p.stem.split("-")[1]))
        return cls(**meta, results=[RankingResult.load(p) for p in paths])


def label_and_name(entry: str) -> tuple[str, str]:
    """``"first-order=markov"`` → ``("first-order", "markov")``; a bare name labels itself.

    Labels let one experiment compare configurations of the same model on the same split, so
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


def validation_score(model: Recommender, train: TrainData) -> float | None:
    """The model's validation NDCG@10: the only figure a model, a hyper-parameter or a plan may
    be chosen on. An early-stopped model kept its best one; another is ranked on the validation
    cases now. None without validation cases."""
    if isinstance(model, EarlyStopping) and math.isfinite(model.best_score_):
        return float(model.best_score_)
    if train.valid is None or len(train.valid) == 0:
        return None
    return evaluate_model(model, train.valid, ks=(10,)).means()["ndcg@10"]


def model_seeds(model: Recommender, seeds: int) -> list[int | None]:
    """Seeds to train with: one run for models without a seed, since reruns would be identical."""
    if any(p in model.get_params() for p in SEED_PARAMS):
        return list(range(seeds))
    return [None]


def seeded_model(name: str, params: dict[str, Any], seed: int | None) -> Recommender:
    """Model ``name`` with ``params`` and, if it takes one, the training seed ``seed``."""
    model = make_model(name, **params)
    key = next((p for p in SEED_PARAMS if p in model.get_params()), None)
    if seed is None or key is None:
        return model
    return make_model(name, **{**params, key: seed})


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


def epoch_progress(
    model: EarlyStopping,
    where: str,
    notify: Callable[[str, float], None],
    seed_index: int,
    seeds: int,
) -> Callable[[int, float], None]:
    """A validation hook that puts epoch, loss, validation NDCG@10 and the best epoch so far on
    the progress line: a long fit shows whether it still learns, not only that it runs."""
    best = {"epoch": 0, "score": -math.inf}
    epochs = max(1, int(getattr(model, "epochs", 1)))

    def on_validation(epoch: int, score: float) -> None:
        if score > best["score"]:
            best.update(epoch=epoch, score=score)
        loss = model.history_[-1].get("loss") if model.history_ else None
        shown = f", loss {loss:.4f}" if loss is not None else ""
        notify(
            f"{where}: epoch {epoch}{shown}, valid NDCG@10 {score:.4f}, "
            f"best {best['score']:.4f} at epoch {best['epoch']}",
            (seed_index + 0.5 * min(epoch / epochs, 1.0)) / seeds,
        )

    return on_validation


def run_model(
    name: str,
    params: dict[str, Any],
    split: Split,
    train: TrainData,
    config: Experiment,
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
    notify = notifier(on_stage)
    runs = ModelRuns(label or name, params, estimator=name, augmented=augmented is not None)
    seeds = model_seeds(make_model(name, **params), config.seeds)
    for i, seed in enumerate(seeds):
        notify(f"{runs.label}: fit (seed {seed})", i / len(seeds))
        model = seeded_model(name, params, seed)
        data = train
        if augmented is not None:
            notify(f"{runs.label}: augment (seed {seed})", i / len(seeds))
            outcome = augmented.for_seed(seed or 0)
            data = outcome.train
            runs.augmentation.append(outcome.summary())
        started = time.perf_counter()
        if isinstance(model, EarlyStopping):
            where = f"{runs.label} (seed {seed})"
            model.fit(data, on_validation=epoch_progress(model, where, notify, i, len(seeds)))
            runs.training_curves.append([dict(record) for record in model.history_])
        else:
            model.fit(data)
        runs.fit_seconds.append(time.perf_counter() - started)
        score = validation_score(model, train)
        if score is not None:
            runs.valid_scores.append(score)
            runs.best_epochs.append(model.best_epoch_ if isinstance(model, EarlyStopping) else None)
            runs.valid_choices.append(model.validation_choices())
        notify(f"{runs.label}: test (seed {seed})", (i + 0.5) / len(seeds))
        result = rank(model, split.test, ks=config.ks)
        runs.results.append(result)
        runs.eval_seconds.append(result.seconds)
    if len(seeds) < config.seeds:
        # A deterministic model gives the same result for every seed: repeat it, so that it
        # pairs with seeded models and its spread over seeds is honestly zero.
        runs.results *= config.seeds
    return runs


def summarize(
    all_runs: list[ModelRuns],
    split: Split,
    train: TrainData,
    config: Experiment,
    slices: Slices,
) -> dict[str, Any]:
    """``{"results": [per model], "comparisons": [...]}`` over one set of slices."""
    return {
        "results": [summarize_model(r, split, train, config, slices) for r in all_runs],
        "comparisons": compare_models(all_runs, slices, config.n_resamples),
    }


def run_experiment(config: Experiment, on_stage: StageCallback | None = None) -> dict[str, Any]:
    """The whole experiment in one process; also returns the seconds it took."""
    notify = notifier(on_stage)
    started = time.perf_counter()
    notify("loading data", 0.0)
    split, train = prepare_training(config, lambda: notify("encoding item texts", 0.05))
    augmented = AugmentedTrain(train, config.augment) if config.augment is not None else None
    jobs = config.jobs(with_augmented=augmented is not None)
    all_runs = [
        run_model(
            name,
            config.params.get(label, {}),
            split,
            train,
            config,
            progress,
            augmented if with_aug else None,
            label=label,
        )
        for (label, name, with_aug), progress in zip(jobs, shares(notify, 0.1, 0.9, len(jobs)))
    ]
    notify("summarizing", 0.99)
    summary = summarize(all_runs, split, train, config, case_slices(split, train))
    return {**summary, "seconds": time.perf_counter() - started}


def write_results(outcome: dict[str, Any], out: Path) -> Path:
    """One model: the per-model JSON itself; several: ``{"models": [...], "comparisons": [...]}``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    results = outcome["results"]
    payload = (
        results[0]
        if len(results) == 1
        else {"models": results, "comparisons": outcome["comparisons"]}
    )
    out.write_text(json.dumps(payload, indent=2, default=json_default))
    return out


def json_default(value: object) -> object:
    """numpy scalars and arrays as JSON numbers and lists; anything else as its text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
