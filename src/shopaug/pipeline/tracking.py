"""Experiment tracking with MLflow: one MLflow run per ``shopaug run``.

Logged: the flattened config as parameters, every model's test metric per slice
(``sasrec+aug.test.cold.ndcg_10``), kept samples per strategy and seed, the stage keys and times,
the input data hashes and the versions of the packages that shape the numbers (tags), and the
results, per-user metrics and report as artifacts. The store is a SQLite file in the run folder
unless the config or ``MLFLOW_TRACKING_URI`` names a server (``RunConfig.tracking_uri``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shopaug.pipeline.runner import RunOutcome

#: Packages whose version can change a run's numbers.
TRACKED_PACKAGES = (
    "shopaug",
    "numpy",
    "torch",
    "implicit",
    "faiss-cpu",
    "sentence-transformers",
    "duckdb",
    "pandas",
    "ray",
    "mlflow",
)
#: MLflow caps a parameter value's length, and the entries of one ``log_batch`` call.
MAX_PARAM_LENGTH = 6000
BATCH = 100


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` -> ``("a.b", 1)``; lists stay values."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def metric_name(*parts: str) -> str:
    """A metric or tag key MLflow accepts: ``sasrec+aug``, ``ndcg@10`` -> ``sasrec_plus_aug``,
    ``ndcg_10``; any other character outside MLflow's set becomes ``_``."""
    name = ".".join(parts).replace("@", "_").replace("+", "_plus_")
    return re.sub(r"[^\w\-. :/]", "_", name)


def run_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """Every model's per-slice means and the beyond-accuracy measures, as flat metric keys."""
    metrics: dict[str, float] = {}
    for result in results["results"]:
        model = result["model"]
        for slice_name, by_metric in result["metrics"].items():
            for name, entry in by_metric.items():
                metrics[metric_name(model, "test", slice_name, name)] = float(entry["mean"])
        for name, value in result["beyond"].items():
            metrics[metric_name(model, "beyond", name)] = float(value)
    return metrics


def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[f"version.{name}"] = version(name)
        except PackageNotFoundError:
            out[f"version.{name}"] = "not installed"
    return out


def log_run(outcome: RunOutcome) -> str:
    """Log one finished run; returns the MLflow run id.

    A client bound to the run's store is used instead of MLflow's global state, which would set
    ``MLFLOW_TRACKING_URI`` for the whole process and send the next run of it to this store.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    config = outcome.config
    client = MlflowClient(tracking_uri=config.tracking_uri())
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(
            config.tracking.experiment, artifact_location=config.artifact_location()
        )
    )
    run_id = client.create_run(experiment_id, run_name=config.name).info.run_id
    now = int(time.time() * 1000)
    params = [
        Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in flatten(config.model_dump(mode="json"))
    ]
    metrics = [Metric(k, v, now, 0) for k, v in outcome_metrics(outcome).items()]
    tags = [RunTag(k, v) for k, v in outcome_tags(outcome).items()]
    for i in range(0, max(len(params), len(metrics), len(tags)), BATCH):
        client.log_batch(run_id, metrics[i : i + BATCH], params[i : i + BATCH], tags[i : i + BATCH])
    for name in ("results.json", "per_user.parquet"):
        client.log_artifact(run_id, str(config.out / name))
    if outcome.report is not None:
        client.log_artifacts(run_id, str(outcome.report.parent), artifact_path="report")
    client.set_terminated(run_id)
    return run_id


def outcome_metrics(outcome: RunOutcome) -> dict[str, float]:
    """Test metrics per model and slice, kept samples per strategy and seed, stage seconds."""
    metrics = run_metrics(outcome.results)
    for seed, counts in outcome.augment_counts().items():
        for strategy, count in counts.items():
            metrics[metric_name("samples", f"seed{seed}", strategy)] = float(count)
    for stage in outcome.stages:
        metrics[metric_name("seconds", stage.stage.replace(" ", "_"))] = stage.seconds
    metrics["seconds.total"] = outcome.seconds
    return metrics


def outcome_tags(outcome: RunOutcome) -> dict[str, str]:
    """Package versions, stage cache keys and the SHA-256 of every input file."""
    ingest = next(s for s in outcome.stages if s.stage == "ingest")
    tags = package_versions()
    for stage in outcome.stages:
        tags[metric_name("stage", stage.stage)] = stage.key
    for path, digest in ingest.info.get("files", {}).items():
        tags[metric_name("data.sha256", path)] = digest
    tags["data.key"] = ingest.key
    return tags
