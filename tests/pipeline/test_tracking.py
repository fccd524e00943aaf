import os

import pytest

from shopaug.pipeline import run_pipeline
from shopaug.pipeline.tracking import flatten, metric_name, run_metrics


def test_flatten_and_metric_names():
    assert dict(flatten({"a": {"b": 1, "c": [1, 2]}, "d": None})) == {
        "a.b": 1,
        "a.c": [1, 2],
        "d": None,
    }
    assert (
        metric_name("sasrec+aug", "test", "cold", "ndcg@10") == "sasrec_plus_aug.test.cold.ndcg_10"
    )


def test_run_metrics_flatten_every_slice_and_measure():
    results = {
        "results": [
            {
                "model": "pop",
                "metrics": {"all": {"ndcg@10": {"mean": 0.25}}, "cold": {"mrr": {"mean": 0.5}}},
                "beyond": {"coverage": 0.1},
            }
        ]
    }
    assert run_metrics(results) == {
        "pop.test.all.ndcg_10": 0.25,
        "pop.test.cold.mrr": 0.5,
        "pop.beyond.coverage": 0.1,
    }


def test_runs_are_logged_to_the_store_in_the_run_folder(tiny, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tiny(tracking={"enabled": True, "experiment": "tiny"})
    first = run_pipeline(config)
    second = run_pipeline(config)
    assert "MLFLOW_TRACKING_URI" not in os.environ  # no global state left for the next run
    client = mlflow.MlflowClient(tracking_uri=config.tracking_uri())
    experiment = client.get_experiment_by_name("tiny")
    assert experiment.artifact_location == config.artifact_location()
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {first.tracking_run_id, second.tracking_run_id}
    run = runs[first.tracking_run_id]
    assert run.data.metrics["markov_plus_aug.test.all.ndcg_10"] == pytest.approx(
        first.results["results"][3]["metrics"]["all"]["ndcg@10"]["mean"]
    )
    assert run.data.metrics["samples.seed0.crop"] > 0
    assert run.data.params["split.protocol"] == "W"
    assert run.data.tags["version.shopaug"]
    assert run.info.status == "FINISHED"
    assert (config.out / "mlflow.db").exists()
    artifacts = {a.path for a in client.list_artifacts(first.tracking_run_id)}
    assert {"results.json", "per_user.parquet"} <= artifacts
    assert (config.out / "mlartifacts").is_dir()
