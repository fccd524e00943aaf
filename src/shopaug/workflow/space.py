"""The search space of ``shopaug tune``: what a plan may be made of, read from YAML.

A space is data, not code, so a user widens it in a copy of ``spaces/default.yaml`` instead of
editing the tuner. Each entry is a choice (a list), a range (``{low, high, log}``) or one fixed
value; :func:`sample_trial` turns one Optuna trial into an :class:`AugmentPlan` and model
parameters, and :meth:`SearchSpace.check` tries every value the space can produce against the
strategy, filter and model schemas before any trial runs.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopaug.augment import STRATEGIES
from shopaug.filter import FILTERS
from shopaug.models import check_model_params, model_class
from shopaug.models.augmented import AugmentPlan

if TYPE_CHECKING:
    import optuna

#: The space shipped with the package (``shopaug tune`` without ``--space``).
DEFAULT_SPACE = Path(__file__).with_name("spaces") / "default.yaml"


class Range(BaseModel):
    """A numeric range to sample from: integers when both ends are integers."""

    model_config = ConfigDict(extra="forbid")

    low: float | int
    high: float | int
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


#: A choice (list), a range, or one fixed value.
Dimension = Range | list[Any] | float | int | str | bool


def suggest(trial: optuna.Trial, name: str, dimension: Dimension) -> Any:
    """One value of ``dimension`` for ``trial``; a fixed value is returned as it is."""
    if isinstance(dimension, Range):
        if dimension.integer:
            return trial.suggest_int(
                name, int(dimension.low), int(dimension.high), log=dimension.log
            )
        return trial.suggest_float(name, dimension.low, dimension.high, log=dimension.log)
    if isinstance(dimension, list):
        return trial.suggest_categorical(name, dimension)
    return dimension


def dimension_values(dimension: Dimension) -> list[Any]:
    """Values that cover ``dimension`` (its ends, its choices, or the value): what is checked
    against a schema before any trial runs."""
    if isinstance(dimension, Range):
        return [dimension.low, dimension.high]
    return dimension if isinstance(dimension, list) else [dimension]


class SearchSpace(BaseModel):
    """What ``shopaug tune`` may choose from (see ``spaces/default.yaml`` for each entry)."""

    model_config = ConfigDict(extra="forbid")

    strategies: list[str] = Field(min_length=1)
    max_strategies: int = Field(2, ge=1)
    copies: Dimension = 1
    correlation: Dimension = "text"
    weight: Dimension = 0.5
    max_ratio: Dimension = 1.0
    filters: list[list[str]] = Field(min_length=1)
    model_params: dict[str, dict[str, Dimension]] = {}
    start: list[dict[str, Any]] = []

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in STRATEGIES:
                raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
        return names

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, chains: list[list[str]]) -> list[list[str]]:
        for name in itertools.chain.from_iterable(chains):
            if name not in FILTERS:
                raise ValueError(f"unknown filter {name!r}; known: {', '.join(FILTERS)}")
        return chains

    @classmethod
    def load(cls, path: Path | None = None) -> SearchSpace:
        """The space in a YAML file (default: the shipped one); errors name the file."""
        path = path or DEFAULT_SPACE
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read the search space: {exc}") from exc
        try:
            return cls.model_validate(raw or {})
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def without_text(self) -> SearchSpace:
        """The space for data without item text embeddings: no strategy that needs them, and
        neighbours by co-occurrence only."""
        kept = [name for name in self.strategies if not STRATEGIES[name].needs_embeddings]
        if not kept:
            raise ValueError("every strategy of the space needs item text embeddings")
        return self.model_copy(update={"strategies": kept, "correlation": "cooccurrence"})

    def model_defaults(self, model: str, fixed: dict[str, Any]) -> dict[str, Any]:
        """Trial values of the model's tuned parameters at their defaults (or the ``fixed``
        value given), where the space holds them: trial 0 is the model as it would be trained
        without tuning. A default outside its range is left for the sampler to choose."""
        fields = model_class(model).Params.model_fields
        out = {}
        for key, dimension in self.model_params.get(model, {}).items():
            value = fixed.get(key, fields[key].default if key in fields else None)
            inside = (
                isinstance(value, int | float) and dimension.low <= value <= dimension.high
                if isinstance(dimension, Range)
                else value in dimension_values(dimension)
            )
            if value is not None and inside:
                out[f"{model}.{key}"] = value
        return out

    def strategy_sets(self) -> list[str]:
        """Every combination of 1 to ``max_strategies`` strategies, as ``"mask+insert"``."""
        most = min(self.max_strategies, len(self.strategies))
        return [
            "+".join(combo)
            for size in range(1, most + 1)
            for combo in itertools.combinations(self.strategies, size)
        ]

    def check(self, model: str) -> None:
        """Every value the space can produce is one its strategy, filter or model accepts: a typo
        fails now, not after an hour of trials."""
        for name in self.strategies:
            fields = STRATEGIES[name].model_fields
            params = {
                key: value
                for key, dimension in (("copies", self.copies), ("correlation", self.correlation))
                if key in fields
                for value in dimension_values(dimension)
            }
            for key, value in params.items():
                STRATEGIES[name](**{key: value})
        for value in dimension_values(self.max_ratio):
            FILTERS["ratio-cap"](max_ratio=value)
        for value in dimension_values(self.weight):
            AugmentPlan(strategies=[self.strategies[0]], weight=value)
        for key, dimension in self.model_params.get(model, {}).items():
            for value in dimension_values(dimension):
                check_model_params(model, {key: value})


def sample_trial(
    trial: optuna.Trial, space: SearchSpace, model: str
) -> tuple[AugmentPlan | None, dict[str, Any]]:
    """The plan (None: real rows only) and model parameters of one trial.

    Parameters are conditional: a trial without augmentation samples only the model's; shared
    ones (``copies``, ``correlation``) apply to each chosen strategy that takes them.
    """
    params = {
        key: suggest(trial, f"{model}.{key}", dimension)
        for key, dimension in space.model_params.get(model, {}).items()
    }
    if not trial.suggest_categorical("augment", [False, True]):
        return None, params
    names = trial.suggest_categorical("strategies", space.strategy_sets()).split("+")
    shared = {
        "copies": lambda: suggest(trial, "copies", space.copies),
        "correlation": lambda: suggest(trial, "correlation", space.correlation),
    }
    strategy_params = {
        name: {
            key: value() for key, value in shared.items() if key in STRATEGIES[name].model_fields
        }
        for name in names
    }
    chains = {",".join(chain): chain for chain in space.filters}
    chain = chains[trial.suggest_categorical("filters", list(chains))]
    filter_params = {}
    if "ratio-cap" in chain:
        filter_params["ratio-cap"] = {"max_ratio": suggest(trial, "max_ratio", space.max_ratio)}
    plan = AugmentPlan(
        strategies=names,
        params={name: p for name, p in strategy_params.items() if p},
        filters=chain,
        filter_params=filter_params,
        weight=suggest(trial, "weight", space.weight),
    )
    return plan, params
