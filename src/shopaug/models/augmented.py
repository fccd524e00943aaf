"""Training on real plus generated rows: strategies, filters and mixing in one step.

This sits with the models because the consistency filter needs one (a Markov chain fit on the
real training rows scores how plausible each generated row is) and because the result is what a
model trains on. Only ``TrainData.sequences`` and the item side reach the strategies and the
filters; the validation cases ride along for early stopping and are read by nothing else here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shopaug.augment import (
    AugmentContext,
    GeneratedSequences,
    Strategy,
    StrategyRun,
    generate,
    make_strategy,
    mix,
)
from shopaug.augment.context import ProgressHook
from shopaug.filter import (
    DEFAULT_FILTERS,
    FilterContext,
    FilterReport,
    SampleFilter,
    apply_filters,
    make_filter,
)
from shopaug.models.base import ItemSide, TrainData
from shopaug.models.markov import MarkovChain


class AugmentPlan(BaseModel):
    """Which strategies and filters to run, with their parameters, and how much samples weigh."""

    model_config = ConfigDict(extra="forbid")

    strategies: list[str] = Field(min_length=1)
    params: dict[str, dict[str, Any]] = {}
    filters: list[str] = list(DEFAULT_FILTERS)
    filter_params: dict[str, dict[str, Any]] = {}
    weight: float = Field(0.5, ge=0, le=1, description="Weight of a generated event (real = 1).")
    by_score: bool = Field(True, description="Also scale each sample's weight by its score.")

    def build_strategies(self, seed: int = 0) -> list[Strategy]:
        """The strategies, seeded with ``seed`` unless their parameters fix one."""
        return [
            make_strategy(name, **{"seed": seed, **self.params.get(name, {})})
            for name in self.strategies
        ]

    def build_filters(self) -> list[SampleFilter]:
        return [make_filter(name, **self.filter_params.get(name, {})) for name in self.filters]


@dataclass
class Augmentation:
    """The training data with generated rows mixed in, and what happened on the way."""

    train: TrainData
    samples: GeneratedSequences
    strategy_runs: list[StrategyRun]
    filter_reports: list[FilterReport]

    def summary(self) -> dict[str, Any]:
        return {
            "generated": {r.name: r.samples for r in self.strategy_runs},
            "samples_per_second": {r.name: r.samples_per_second for r in self.strategy_runs},
            "removed": {
                r.name: {"removed": r.removed, "by_origin": r.removed_by_origin}
                for r in self.filter_reports
            },
            "kept": self.samples.counts_by_origin(),
            "kept_events": self.samples.n_events,
            "real_events": self.train.sequences.n_events - self.samples.n_events,
            # Who wrote the kept rows: strategy parameters, or LLM backend, model and prompt.
            "generators": {
                origin: sorted(set(self.samples.generator[self.samples.origin == origin]))
                for origin in self.samples.counts_by_origin()
            },
            # What strategies reported beyond their samples (the LLM ones: calls, cost, failures).
            "details": {r.name: r.details for r in self.strategy_runs if r.details},
        }


def plausibility_scorer(train: TrainData) -> MarkovChain:
    """The consistency filter's judge: a first-order chain on the real training rows only.

    Pinned rather than taken from the chain's defaults: the augmentation plans were chosen on
    validation with this judge, and ``transition_log_likelihood`` reads first-order steps anyway.
    """
    return MarkovChain(smoothing=10.0, order=1).fit(TrainData(train.sequences, train.n_items))


def augment_train(
    train: TrainData,
    plan: AugmentPlan,
    seed: int = 0,
    progress: ProgressHook | None = None,
) -> Augmentation:
    """Generate, filter and mix; the returned ``TrainData`` keeps real rows first.

    ``progress`` follows the LLM strategies' batches (the only ones slow enough to need it).
    """
    side = train.items or ItemSide()
    context = AugmentContext(
        train.sequences, train.n_items, side.embeddings, catalog=side.catalog, progress=progress
    )
    context.prepare()  # neighbour tables once, so strategy timings are the strategies' own
    samples, runs = generate(plan.build_strategies(seed), context)
    kept, reports = filter_samples(train, samples, plan)
    return Augmentation(mix_train(train, kept, plan), kept, runs, reports)


def filter_samples(
    train: TrainData, samples: GeneratedSequences, plan: AugmentPlan
) -> tuple[GeneratedSequences, list[FilterReport]]:
    """The plan's filter chain over generated rows, judged against the real training rows."""
    judge = plausibility_scorer(train)
    return apply_filters(
        samples,
        plan.build_filters(),
        FilterContext(train.sequences, train.n_items, judge.transition_log_likelihood),
    )


def mix_train(train: TrainData, kept: GeneratedSequences, plan: AugmentPlan) -> TrainData:
    """Real rows then kept generated rows, weighted by the plan; generated rows keep the user
    of the real row they came from."""
    mixed, origin_row = mix(train.sequences, kept, plan.weight, plan.by_score)
    assert train.user_index is not None
    return replace(
        train,
        sequences=mixed,
        user_index=train.user_index[origin_row],
        n_real_rows=len(train.sequences),
    )
