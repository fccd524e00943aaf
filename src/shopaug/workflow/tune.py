"""``shopaug tune``: choose an augmentation plan and model parameters on a shop's own data.

A plan that lifts one catalog can hurt another: on Scientific the text-neighbour ``insert``
carried signal, while on a catalog with uninformative texts only co-occurrence neighbours would
have. So the plan is searched for on each shop's data and for each model, with Optuna (TPE
sampling; median pruning of trials whose validation curve is behind), and judged **on
validation only**. Test cases are never read here: report test once afterwards, with the chosen
plan (``shopaug bench rec --plan``).

Training on the real rows alone is always trial 0 and always a candidate. A plan is chosen only
when it beats the best trial without augmentation by ``min_gain`` (relative), since
augmentation costs training time and one seed's validation score is noisy.

Protocol C drops validation cases whose target is cold, so validation cannot see cold items.
There the score comes from an inner split (:func:`inner_cold_training`): protocol C applied
again to the training rows, scored on that split's cold and warm targets. The outer validation
and test cases are never read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopaug.data.splits import Split, make_split
from shopaug.evaluate.ranking import evaluate_model, slice_masks
from shopaug.models import (
    EarlyStopping,
    Recommender,
    TrainData,
    check_model_params,
    model_class,
)
from shopaug.models.augmented import AugmentPlan, augment_train
from shopaug.workflow.experiment import seeded_model, validation_score
from shopaug.workflow.setup import DataSetup, Protocol, load_dataset, prepare_training
from shopaug.workflow.space import SearchSpace, sample_trial

if TYPE_CHECKING:
    import optuna

#: Trials (repeats included) allowed per trial of the budget before the search stops.
REPEAT_ALLOWANCE = 5
#: Format version of ``plan.yaml``.
PLAN_FORMAT = 1


class TuneConfig(BaseModel):
    """``shopaug tune``: which data, model and budget; everything is validated before data is read."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    model: str
    #: Fixed model parameters (the space's ``model_params`` are tuned on top of them).
    params: dict[str, Any] = {}
    protocol: Literal["auto", "W", "C", "S", "T"] = "auto"
    trials: int = Field(20, ge=1)
    #: Seconds after which no new trial starts (the running one finishes).
    time_limit: float | None = Field(None, gt=0)
    seed: int = 0
    #: The seed of protocol C's inner cold split (0 would redraw the outer cold items' seed).
    inner_cold_seed: int = 1
    #: A plan must beat the best trial without augmentation by this share to be chosen.
    min_gain: float = Field(0.01, ge=0)
    #: Stop trials whose validation curve falls behind the median of earlier ones.
    prune: bool = True
    encoder: str | None = None
    events: list[str] | None = None
    split_seed: int = 0
    collapse_repeats: bool = False
    #: Encode item texts (text neighbours, cold-neighbours, content models); without, the space
    #: loses what needs them.
    embed_items: bool = True
    work_dir: Path = Path("runs/bench")

    @model_validator(mode="after")
    def _known_model(self) -> TuneConfig:
        model_class(self.model)
        self.params = check_model_params(self.model, self.params)
        return self

    def setup(self, protocol: Protocol) -> DataSetup:
        """The data setup of the trials: this config's fields, with the protocol resolved."""
        shared = set(DataSetup.model_fields) - {"protocol"}
        return DataSetup(**self.model_dump(include=shared), protocol=protocol)

    def resolve_protocol(self) -> Protocol:
        """``auto``: protocol T (a time split) when the events have timestamps, else W."""
        if self.protocol != "auto":
            return self.protocol
        dataset = load_dataset(self.data, self.events, self.work_dir)
        return "T" if dataset.timestamps is not None else "W"


def inner_cold_training(setup: DataSetup, seed: int) -> tuple[Split, TrainData]:
    """Protocol C applied to protocol C's own training rows: a cold-item check without leakage.

    The inner split's test cases (each inner training row's last event, a cold target for some)
    come from the outer training rows, so scoring them reads no outer validation or test target.
    """
    outer, train = prepare_training(setup.model_copy(update={"protocol": "C"}))
    inner = make_split("C", outer.train, outer.n_items, seed)
    inner_train = TrainData(
        inner.train,
        outer.n_items,
        outer.train_user_index[inner.train_user_index],
        train.n_users,
        train.items,
        valid=inner.valid,
    )
    return inner, inner_train


#: The figure a plan may not lower on protocol C (see :attr:`Objective.guard`).
COLD_GUARD = "inner_cold_recall@20"


@dataclass
class Objective:
    """What a trial is scored on: validation NDCG@10, or (protocol C) the inner split's test
    Recall@20, the unweighted mean of its cold and warm targets, since a cold-start plan must
    serve both."""

    train: TrainData
    inner: Split | None = None

    @property
    def guard(self) -> str | None:
        """A figure no chosen plan may lower against the best trial without augmentation.

        On protocol C a plan's gain on warm targets must not pay for a loss on cold ones: on
        Scientific the mean of the two chose crop + insert, whose warm gain hid a cold-target
        loss on the inner split that test then confirmed (-0.0125 Recall@20).
        """
        return COLD_GUARD if self.inner is not None else None

    @property
    def description(self) -> str:
        if self.inner is None:
            return "validation NDCG@10"
        return "inner cold split: mean of cold- and warm-target Recall@20"

    def score(self, model: Recommender) -> tuple[float, dict[str, float]]:
        """The trial's score, and the figures it came from."""
        if self.inner is None:
            value = validation_score(model, self.train)
            if value is None:
                raise ValueError("the split has no validation cases to choose a plan on")
            return value, {"valid_ndcg@10": value}
        result = evaluate_model(model, self.inner.test, ks=(10, 20))
        masks = slice_masks(result.targets, np.ones(self.inner.n_items), self.inner.cold_mask())
        figures = {
            f"inner_{name}_{metric}": result.means(masks[name])[metric]
            for name in ("all", "cold", "warm")
            for metric in ("ndcg@10", "recall@20")
        }
        value = (figures["inner_cold_recall@20"] + figures["inner_warm_recall@20"]) / 2
        return float(value), figures


class TrialRecord(BaseModel):
    """One trial as the table and ``plan.yaml`` show it."""

    number: int
    state: Literal["complete", "pruned", "failed", "repeat"]
    augment: AugmentPlan | None = None
    params: dict[str, Any] = {}
    score: float | None = None
    figures: dict[str, float] = {}
    kept: int = 0
    best_epoch: int | None = None
    #: What the fit chose on validation besides the epoch (a blend's weights), for a refit.
    choices: dict[str, Any] = {}
    seconds: float = 0.0
    error: str | None = None

    def plan_text(self) -> str:
        """A short description: ``mask+insert x10 text w=1.0 cap=10`` or ``no augmentation``."""
        if self.augment is None:
            base = "no augmentation"
        else:
            plan = self.augment
            copies = {p["copies"] for p in plan.params.values() if "copies" in p}
            correlation = {p["correlation"] for p in plan.params.values() if "correlation" in p}
            parts = ["+".join(plan.strategies)]
            parts += [f"x{c}" for c in copies] + sorted(correlation)
            parts.append(f"w={plan.weight:.2f}")
            cap = plan.filter_params.get("ratio-cap", {}).get("max_ratio")
            if cap is not None:
                parts.append(f"cap={cap:.1f}")
            parts.append(f"{len(plan.filters)} filters")
            base = " ".join(parts)
        extra = " ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        return f"{base} {extra}".strip()


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class TunedPlan(BaseModel):
    """``plan.yaml``: the chosen plan with the model and parameters it was chosen for, and every
    trial's validation score; what ``shopaug train --plan`` and ``bench rec --plan`` read."""

    model_config = ConfigDict(extra="forbid")

    format: int = PLAN_FORMAT
    model: str
    params: dict[str, Any] = {}
    augment: AugmentPlan | None = None
    protocol: str
    objective: str
    score: float
    #: The best score without augmentation: what the chosen plan is measured against.
    baseline_score: float
    #: Epoch of the best validation score (early-stopped models): a refit on every event, with
    #: nothing left to validate on, trains this many epochs.
    best_epoch: int | None = None
    #: The chosen trial's other validation choices (a blend's weights), fixed by a refit.
    choices: dict[str, Any] = {}
    chosen_trial: int
    verdict: str
    data: str
    created: str
    seconds: float
    trials: list[TrialRecord]

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))
        return path

    @classmethod
    def load(cls, path: Path) -> TunedPlan:
        """A plan file; errors name the file and the field."""
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read the plan: {exc}") from exc
        try:
            return cls.model_validate(raw)
        except ValueError as exc:
            raise ValueError(f"{path}: not a plan written by `shopaug tune`: {exc}") from exc


class TuneProgress:
    """What a front end hears while tuning (the CLI draws a progress bar from it)."""

    def trial_started(self, number: int, text: str) -> None:
        """Trial ``number`` starts with the plan described by ``text``."""

    def validated(self, number: int, epoch: int, score: float) -> None:
        """Trial ``number`` validated after ``epoch`` epochs."""

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        """Trial done (``best``: the best finished trial so far)."""


@dataclass
class Tuner:
    """One tuning run: the prepared training data, the space, and the trials so far."""

    config: TuneConfig
    space: SearchSpace
    objective: Objective
    progress: TuneProgress
    records: list[TrialRecord]

    def run_trial(self, trial: optuna.Trial) -> float:
        """Sample, augment, fit, score; a repeat of an earlier trial's values is not refit."""
        import optuna

        started = time.perf_counter()
        plan, tuned = sample_trial(trial, self.space, self.config.model)
        params = {**self.config.params, **tuned, **_one_thread(self.config.model)}
        record = TrialRecord(number=trial.number, state="complete", augment=plan, params=tuned)
        earlier = next((r for r in self.records if _same(r, record)), None)
        if earlier is not None and earlier.score is not None:
            repeat = earlier.model_copy(update={"number": trial.number, "state": "repeat"})
            trial.set_user_attr("record", repeat.model_dump(mode="json"))
            return earlier.score
        self.progress.trial_started(trial.number, record.plan_text())
        train = self.objective.train
        if plan is not None:
            augmentation = augment_train(train, plan, self.config.seed)
            train, record.kept = augmentation.train, len(augmentation.samples)
        model = seeded_model(self.config.model, params, self.config.seed)

        def watch(epoch: int, score: float) -> None:
            self.progress.validated(trial.number, epoch, score)
            if self.objective.inner is None and self.config.prune:
                trial.report(score, epoch)
                if trial.should_prune():
                    record.state, record.score, record.best_epoch = "pruned", score, epoch
                    raise optuna.TrialPruned()

        try:
            if isinstance(model, EarlyStopping):
                model.fit(train, on_validation=watch)
                record.best_epoch = model.best_epoch_
            else:
                model.fit(train)
            record.choices = model.validation_choices()
            record.score, record.figures = self.objective.score(model)
        finally:
            record.seconds = time.perf_counter() - started
            trial.set_user_attr("record", record.model_dump(mode="json"))
        return record.score


def _one_thread(model: str) -> dict[str, Any]:
    """Trials are compared on scores, so they must be reproducible: torch models train with one
    thread (bit-identical for a seed), the others keep their settings."""
    return {"num_threads": 1} if "num_threads" in model_class(model).Params.model_fields else {}


def _same(a: TrialRecord, b: TrialRecord) -> bool:
    return a.augment == b.augment and a.params == b.params


def trial_record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """The record a trial left, with the state Optuna gave it (failed trials keep their error)."""
    import optuna

    states = {
        optuna.trial.TrialState.COMPLETE: "complete",
        optuna.trial.TrialState.PRUNED: "pruned",
        optuna.trial.TrialState.FAIL: "failed",
    }
    raw = trial.user_attrs.get("record", {"number": trial.number, "state": "failed"})
    record = TrialRecord.model_validate(raw)
    if record.state != "repeat":
        record.state = states.get(trial.state, "failed")  # type: ignore[assignment]
    if record.state == "failed":
        record.error = trial.user_attrs.get("error") or record.error
    return record


def choose(
    records: list[TrialRecord], min_gain: float, guard: str | None = None
) -> tuple[TrialRecord, TrialRecord, str]:
    """The chosen trial, the best one without augmentation, and the verdict in words.

    With ``guard`` (a figure name), a plan is a candidate only if that figure is at least the
    best plain trial's.
    """
    finished = [r for r in records if r.state in ("complete", "repeat") and r.score is not None]
    plain = max((r for r in finished if r.augment is None), key=lambda r: r.score or 0.0)
    augmented = [r for r in finished if r.augment is not None]
    held = [] if guard is None else [r for r in augmented if not _keeps(r, plain, guard)]
    best = max((r for r in augmented if r not in held), key=lambda r: r.score or 0.0, default=None)
    assert plain.score is not None
    note = _guard_note(held, plain, guard)
    if best is None:
        what = "no augmentation plan was left" if held else "no augmentation plan finished"
        return plain, plain, f"{what}; training on the real rows alone{note}"
    assert best.score is not None
    gain = (best.score - plain.score) / plain.score if plain.score > 0 else math.inf
    if best.score > plain.score and gain >= min_gain:
        return (
            best,
            plain,
            (
                f"trial {best.number} beats the real rows alone by {gain:+.1%} "
                f"({best.score:.4f} vs {plain.score:.4f}){note}"
            ),
        )
    return (
        plain,
        plain,
        (
            f"no plan beat training on the real rows alone by {min_gain:.0%}: the best, trial "
            f"{best.number}, scored {best.score:.4f} against {plain.score:.4f} ({gain:+.1%}){note}"
        ),
    )


def _keeps(record: TrialRecord, plain: TrialRecord, guard: str) -> bool:
    return record.figures.get(guard, -math.inf) >= plain.figures.get(guard, math.inf)


def _guard_note(held: list[TrialRecord], plain: TrialRecord, guard: str | None) -> str:
    """Why the best-scoring plans were passed over, if the guard passed over any."""
    if not held or guard is None:
        return ""
    best = max(held, key=lambda r: r.score or 0.0)
    return (
        f"; {len(held)} plan(s) lowered {guard} below the real rows alone "
        f"({plain.figures.get(guard, math.nan):.4f}) and were passed over, the best of them "
        f"trial {best.number} ({best.figures.get(guard, math.nan):.4f})"
    )


def tune(
    config: TuneConfig,
    space: SearchSpace | None = None,
    progress: TuneProgress | None = None,
    before_data: Callable[[str], None] | None = None,
) -> TunedPlan:
    """Run the trials within the budget and return the chosen plan (see the module docstring)."""
    import optuna

    space = space or SearchSpace.load()
    if not config.embed_items:
        space = space.without_text()
    space.check(config.model)
    progress = progress or TuneProgress()
    started = time.perf_counter()
    note = before_data or (lambda _label: None)
    note("loading data")
    protocol = config.resolve_protocol()
    setup = config.setup(protocol)
    if protocol == "C":
        inner, train = inner_cold_training(setup, config.inner_cold_seed)
        objective = Objective(train, inner)
    else:
        objective = Objective(prepare_training(setup)[1])
    note("tuning")
    tuner = Tuner(config, space, objective, progress, records=[])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler(config.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=5),
    )
    baseline = {"augment": False, **space.model_defaults(config.model, config.params)}
    for values in [baseline, *space.start]:
        study.enqueue_trial(values, skip_if_exists=True)

    def finished(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        record = trial_record(trial)
        tuner.records.append(record)
        done = [r for r in tuner.records if r.score is not None and r.state != "pruned"]
        progress.trial_finished(record, max(done, key=lambda r: r.score or 0.0, default=None))
        # A repeat costs nothing, so it does not use up the budget; the sampler is stopped
        # anyway once it only repeats itself (the space is exhausted).
        fitted = sum(r.state != "repeat" for r in tuner.records)
        if fitted >= config.trials or len(tuner.records) >= REPEAT_ALLOWANCE * config.trials:
            study.stop()

    def failed(trial: optuna.Trial, exc: Exception) -> None:
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")

    objective_fn = _catching(tuner.run_trial, failed)
    # Trial 0 (real rows alone) runs whatever the time limit: it is what every plan is
    # measured against. The limit counts from the start, the data preparation included.
    run = partial(
        study.optimize, objective_fn, callbacks=[finished], catch=(ValueError, RuntimeError)
    )
    run(n_trials=1)
    if config.trials > 1:
        left = (
            None
            if config.time_limit is None
            else config.time_limit - (time.perf_counter() - started)
        )
        if left is None or left > 0:
            run(timeout=left)
    if not any(r.augment is None and r.score is not None for r in tuner.records):
        raise RuntimeError("the trial without augmentation did not finish; nothing to compare to")
    chosen, plain, verdict = choose(tuner.records, config.min_gain, objective.guard)
    assert chosen.score is not None and plain.score is not None
    return TunedPlan(
        model=config.model,
        params={**config.params, **chosen.params},
        augment=chosen.augment,
        protocol=protocol,
        objective=objective.description,
        score=chosen.score,
        baseline_score=plain.score,
        best_epoch=chosen.best_epoch,
        choices=chosen.choices,
        chosen_trial=chosen.number,
        verdict=verdict,
        data=str(config.data),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - started,
        trials=tuner.records,
    )


def sampler(seed: int) -> optuna.samplers.BaseSampler:
    """TPE over the joint space (``multivariate``, ``group``: a plan's parameters interact and
    are conditional on its strategies), after 5 random trials rather than Optuna's 10, since a
    budget of an hour on a sparse dataset fits only a dozen trials or so."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=5, multivariate=True, group=True
        )


def _catching(
    run: Callable[[optuna.Trial], float], on_error: Callable[[optuna.Trial, Exception], None]
) -> Callable[[optuna.Trial], float]:
    """``run``, with the error of a failing trial kept on the trial (Optuna only logs it)."""

    def objective(trial: optuna.Trial) -> float:
        try:
            return run(trial)
        except (ValueError, RuntimeError) as exc:
            on_error(trial, exc)
            raise

    return objective
