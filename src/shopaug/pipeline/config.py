"""One YAML file per run: everything that decides a run's numbers, validated before any work.

The file is parsed into :class:`RunConfig` (pydantic, unknown keys forbidden), so a typo such as
``evalution:`` or ``models.sasrec.hiden`` fails at once with the file and the key path instead of
being ignored for an hour. The pieces reuse the workflow's own experiment description
(:class:`~shopaug.workflow.Experiment`) and the augmentation plan
(:class:`~shopaug.models.augmented.AugmentPlan`), so ``shopaug run`` and ``shopaug bench rec``
describe and compute a run the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shopaug.augment import STRATEGIES, make_strategy
from shopaug.data.demo_shop import DemoShopConfig
from shopaug.encode.text_encoder import Backend
from shopaug.filter import FILTERS, make_filter
from shopaug.models import MODELS, ParameterError, check_model_params
from shopaug.models.augmented import AugmentPlan
from shopaug.models.params import did_you_mean
from shopaug.workflow import Experiment
from shopaug.workflow.space import SearchSpace

if TYPE_CHECKING:
    from shopaug.workflow.tune import TuneConfig, TunedPlan


class ConfigError(ValueError):
    """A run configuration that cannot be used; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DemoSource(_Section):
    """The embedded synthetic shop, generated and ingested like a user's files."""

    source: Literal["demo"]
    shop: DemoShopConfig = DemoShopConfig()


class AmazonSource(_Section):
    """A folder in the Amazon ``<Name>.item.json`` / ``<Name>.inter.json`` layout."""

    source: Literal["amazon"]
    path: Path


class FilesSource(_Section):
    """A shop's own files (the options of ``shopaug ingest``)."""

    source: Literal["files"]
    items: Path
    interactions: Path | None = None
    queries: Path | None = None
    rename: dict[str, dict[str, str]] = {}

    @field_validator("items", "interactions", "queries")
    @classmethod
    def _is_a_file(cls, path: Path | None) -> Path | None:
        """Checked at load time, so a wrong path fails naming its key, not after other stages."""
        if path is None or path.is_file():
            return path
        raise ValueError(
            f"{path}: is a folder, not a file" if path.is_dir() else f"{path}: no such file"
        )


class RunDirSource(_Section):
    """A run folder already written by ``shopaug ingest``, used as it is."""

    source: Literal["run_dir"]
    path: Path


DataSource = Annotated[
    DemoSource | AmazonSource | FilesSource | RunDirSource, Field(discriminator="source")
]


class SplitConfig(_Section):
    protocol: Literal["W", "C", "S", "T"] = "W"
    seed: int = 0
    events: list[str] | None = None
    collapse_repeats: bool = False


class EncoderConfig(_Section):
    enabled: bool = Field(True, description="Encode item texts (content models, text strategies).")
    model: str | None = Field(None, description="Local sentence-transformers folder.")
    batch_size: int = Field(64, ge=1)
    backend: Backend = Field(
        "torch",
        description="torch (the reference vectors), onnx (the same on ONNX Runtime) or onnx-int8 "
        "(int8 weights: several times faster on a CPU, vectors within a cosine of about 0.99).",
    )
    max_length: int | None = Field(
        None, ge=8, description="Tokens read per item text (default: the model's limit, 256)."
    )


class GeneratorConfig(_Section):
    """The LLM backend handed to every ``llm-*`` strategy that does not name its own."""

    backend: Literal["local", "openai", "fake"] = "local"
    params: dict[str, Any] = {}


class EvaluationConfig(_Section):
    seeds: int = Field(3, ge=1, description="Training (and augmentation) seeds per model.")
    ks: tuple[int, ...] = (10, 20, 50)
    n_resamples: int = Field(1000, ge=100)


class ReportConfig(_Section):
    enabled: bool = True
    title: str | None = None


class ExecutorConfig(_Section):
    """Where the parallel pieces run; results do not depend on it (per-shard seeds)."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(
        None, description="Ray cluster address (ray://host:10001 or 'auto'); none starts one here."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a locally started Ray.")
    shards: int = Field(
        1,
        ge=1,
        description="User shards of augmentation (part of the result: keep it when switching "
        "executors), and pieces of encoding and of test-case scoring (time only).",
    )


class TrackingConfig(_Section):
    enabled: bool = True
    uri: str | None = Field(None, description="MLflow tracking URI (default: file store in out/).")
    experiment: str = "shopaug"


class TuneSection(_Section):
    """``shopaug tune`` as the run's first step: the plan is chosen on validation for ``model``
    and used by the augment stage (and only that model trains with it)."""

    model: str = Field(description="The model the plan is chosen for (one of `models`).")
    trials: int = Field(20, ge=1, description="Trials to fit (repeats of one are free).")
    time_limit: float | None = Field(None, gt=0, description="Seconds; no new trial after.")
    space: Path | None = Field(None, description="Search space YAML (default: the shipped one).")
    min_gain: float = Field(0.01, ge=0, description="Share a plan must beat no augmentation by.")
    seed: int = 0

    def search_space(self) -> SearchSpace:
        return SearchSpace.load(self.space)


class RunConfig(_Section):
    """A whole run: data -> split -> encode -> augment -> train -> evaluate -> report."""

    name: str = "run"
    out: Path = Field(description="Run folder: results, report, tracking store.")
    cache_dir: Path | None = Field(None, description="Stage cache (default: OUT/cache).")
    data: DataSource
    split: SplitConfig = SplitConfig()
    encoder: EncoderConfig = EncoderConfig()
    generator: GeneratorConfig = GeneratorConfig()
    augment: AugmentPlan | None = Field(
        None, description="If set, models also train on real + generated rows (MODEL+aug)."
    )
    augmented_models: list[str] | None = Field(
        None, description="Models trained with the plan too (default: all; with tune: its model)."
    )
    tune: TuneSection | None = Field(
        None, description="Choose the augmentation plan on validation first (shopaug tune)."
    )
    models: dict[str, dict[str, Any]] = Field(
        min_length=1, description="Model name -> parameters, in order; the first is the baseline."
    )
    evaluation: EvaluationConfig = EvaluationConfig()
    report: ReportConfig = ReportConfig()
    executor: ExecutorConfig = ExecutorConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _known_names(self) -> RunConfig:
        """Model, strategy and filter names and parameters are checked now, not mid-run."""
        self.models = {name: _model_params(name, params) for name, params in self.models.items()}
        for name in self.augmented_models or []:
            if name not in self.models:
                raise ValueError(f"augmented_models: {name!r} is not among the models")
        if self.tune is not None:
            if self.augment is not None:
                raise ValueError("augment: the tune section chooses the plan; give one of the two")
            if self.tune.model not in self.models:
                raise ValueError(f"tune.model: {self.tune.model!r} is not among the models")
            self.tune.search_space().check(self.tune.model)
        if self.augment is not None:
            for name in self.augment.strategies:
                if name not in STRATEGIES:
                    known = ", ".join(sorted(STRATEGIES))
                    raise ValueError(f"augment.strategies: unknown {name!r}; known: {known}")
            for name in self.augment.filters:
                if name not in FILTERS:
                    known = ", ".join(sorted(FILTERS))
                    raise ValueError(f"augment.filters: unknown {name!r}; known: {known}")
            plan = self.plan()
            assert plan is not None
            _check_parts(plan.strategies, plan.params, make_strategy, "augment.params")
            _check_parts(plan.filters, plan.filter_params, make_filter, "augment.filter_params")
        return self

    @property
    def cache(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.out / "cache"

    def plan(self, chosen: AugmentPlan | None = None) -> AugmentPlan | None:
        """The augmentation plan (``chosen`` by the tune stage, or the config's) with the
        configured LLM backend given to ``llm-*`` strategies."""
        plan = chosen or self.augment
        if plan is None:
            return None
        params = {name: dict(p) for name, p in plan.params.items()}
        for name in plan.strategies:
            if name.startswith("llm-"):
                params[name] = {
                    "generator": self.generator.backend,
                    "generator_params": self.generator.params,
                    **params.get(name, {}),
                }
        fields = plan.model_dump(exclude={"params"})
        return AugmentPlan(**fields, params=params)

    def tune_config(self, data: Path) -> TuneConfig:
        """The tune section as ``shopaug tune`` takes it: this run's data, protocol and encoder,
        and the model's configured parameters fixed."""
        from shopaug.workflow.tune import TuneConfig

        assert self.tune is not None
        return TuneConfig(
            **self.data_setup(data),
            model=self.tune.model,
            params=self.models[self.tune.model],
            trials=self.tune.trials,
            time_limit=self.tune.time_limit,
            seed=self.tune.seed,
            min_gain=self.tune.min_gain,
        )

    def data_setup(self, data: Path) -> dict[str, Any]:
        """The :class:`~shopaug.workflow.DataSetup` fields of this run (the ingested ``data``):
        what the tune stage and the experiment both read the data with."""
        return {
            "data": data,
            "protocol": self.split.protocol,
            "split_seed": self.split.seed,
            "events": self.split.events,
            "collapse_repeats": self.split.collapse_repeats,
            "encoder": self.encoder.model,
            "embed_items": self.encoder.enabled,
            "work_dir": self.cache,
        }

    def experiment(self, data: Path, tuned: TunedPlan | None = None) -> Experiment:
        """The experiment this run computes, reading the ingested data at ``data``; with the
        tune stage's result, its model trains with the chosen plan and parameters."""
        params = {name: p for name, p in self.models.items() if p}
        augmented = self.augmented_models
        if tuned is not None:
            params[tuned.model] = {**params.get(tuned.model, {}), **tuned.params}
            augmented = augmented or [tuned.model]
        return Experiment(
            **self.data_setup(data),
            models=list(self.models),
            params=params,
            seeds=self.evaluation.seeds,
            ks=self.evaluation.ks,
            n_resamples=self.evaluation.n_resamples,
            augment=self.plan(tuned.augment if tuned else None),
            augmented_models=augmented,
        )

    def tracking_uri(self) -> str:
        """Config first, then ``MLFLOW_TRACKING_URI``, then a store file in the run folder.

        The local default is SQLite (``OUT/mlflow.db``): MLflow 3 refuses new plain-folder file
        stores, and a single file in the run folder is just as local and portable.
        """
        uri = self.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
        return uri or f"sqlite:///{self.out.resolve() / 'mlflow.db'}"

    def artifact_location(self) -> str | None:
        """Artifacts of a local store go next to it; a server keeps its own default."""
        if self.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI"):
            return None
        return (self.out.resolve() / "mlartifacts").as_uri()


def _model_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """One ``models:`` entry checked by the model's schema (values coerced to their types)."""
    if name not in MODELS:
        suggestion = did_you_mean(name, list(MODELS))
        raise ValueError(f"models.{name}: unknown model{suggestion} (known: {', '.join(MODELS)})")
    try:
        return check_model_params(name, params)
    except ParameterError as exc:  # "markov.order: expected int >= 1 (default 5), got 'abc'"
        raise ValueError(f"models.{exc}") from None


def _check_parts(
    names: list[str],
    params: dict[str, dict[str, Any]],
    build: Callable[..., Any],
    key: str,
) -> None:
    """Build each strategy or filter once, so a bad parameter fails naming its key path."""
    for name in names:
        try:
            build(name, **params.get(name, {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in (name, *first["loc"]))
            raise ValueError(
                f"{key}.{where}: {first['msg']} (got {first.get('input')!r})"
            ) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a run YAML; relative paths in it are relative to the working directory.

    ``overrides`` replace top-level keys (``{"out": ...}``) after reading, before validation.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (name, out, data, models, ...)")
    raw.update(overrides or {})
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_error(exc)}") from exc


def describe_error(exc: ValidationError) -> str:
    """The first error as ``key.path: message (got value)``; union branch names are dropped.

    An unknown key comes first, with the known key it most resembles: a typo (``modles:``)
    also makes the key it was meant to be missing, and the typo is the thing to fix.
    """
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    # A discriminated union puts the chosen branch ('demo', 'amazon', ...) into the location.
    branches = {"demo", "amazon", "files", "run_dir"}
    loc = [str(p) for i, p in enumerate(first["loc"]) if not (i == 1 and p in branches)]
    where = ".".join(loc)
    message = first["msg"].removeprefix("Value error, ")
    if not where:  # whole-config checks name their key in the message
        return message
    if first["type"] == "extra_forbidden":
        known = known_keys(RunConfig, first["loc"][:-1])
        hint = did_you_mean(loc[-1], known) or f" (known: {', '.join(known)})"
        return f"{where}: unknown key{hint}"
    got = first.get("input")
    quiet = isinstance(got, dict) or first["type"] in ("missing", "value_error")
    return f"{where}: {message}{'' if quiet else f' (got {got!r})'}"


def known_keys(section: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """The keys allowed at ``path`` (an error location) inside ``section``, to suggest from."""
    annotation: Any = section
    for part in path:
        annotation = _child(annotation, part)
    return [name for model in _models_in(annotation) for name in model.model_fields]


def _child(annotation: Any, part: str | int) -> Any:
    """What sits at key ``part`` of a section: a field's type, or the branch of a union named
    by its tag (``data: {source: files}`` puts ``files`` into the location)."""
    models = _models_in(annotation)
    for model in models:
        if part in model.model_fields:
            return model.model_fields[part].annotation
    tagged = [
        m for m in models if any(part in get_args(f.annotation) for f in m.model_fields.values())
    ]
    return tagged[0] if tagged else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can be (``X | None``, unions, ``Annotated``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]
