import json

import numpy as np
import pytest

from shopaug.data.errors import DataError
from shopaug.models import make_model
from shopaug.workflow import Experiment, model_seeds, run_experiment, write_results


def config(run, **kw):
    base = {"data": run, "models": ["pop", "markov"], "seeds": 2, "embed_items": False}
    return Experiment(**{**base, **kw})


def test_results_have_the_documented_shape(shop_run):
    outcome = run_experiment(config(shop_run, n_resamples=200))
    pop, markov = outcome["results"]
    assert pop["model"] == "pop" and pop["protocol"] == "W"
    entry = markov["metrics"]["all"]["ndcg@10"]
    assert set(entry) >= {"mean", "ci", "std", "per_seed"}
    assert entry["ci"][0] <= entry["mean"] <= entry["ci"][1]
    assert len(entry["per_seed"]) == 2
    assert {"pop_low", "pop_mid", "pop_high"} <= set(markov["metrics"])
    assert markov["config"]["split"]["protocol"] == "W"
    assert "coverage" in markov["beyond"] and "diversity" not in markov["beyond"]
    # The demo shop has sequential structure: the Markov model beats popularity, with a CI.
    diff = next(
        c for c in outcome["comparisons"] if c["slice"] == "all" and c["metric"] == "ndcg@10"
    )
    assert diff["a"] == "markov" and diff["b"] == "pop"
    assert diff["ci"][0] > 0


def test_cold_protocol_reports_cold_and_warm_slices(shop_run):
    outcome = run_experiment(config(shop_run, protocol="C", models=["pop"], seeds=1))
    metrics = outcome["results"][0]["metrics"]
    assert "cold" in metrics and "warm" in metrics
    # Popularity never recommends an item it has not seen: cold targets are never hit.
    assert metrics["cold"]["recall@50"]["mean"] == 0.0


def test_deterministic_models_train_once_and_seeded_ones_per_seed():
    assert model_seeds(make_model("markov"), 3) == [None]
    assert model_seeds(make_model("als"), 3) == [0, 1, 2]


def test_write_results_single_and_several(shop_run, tmp_path):
    outcome = run_experiment(config(shop_run, models=["pop"], seeds=1, n_resamples=100))
    single = json.loads(write_results(outcome, tmp_path / "one.json").read_text())
    assert single["model"] == "pop"
    outcome["results"].append(outcome["results"][0])
    several = json.loads(write_results(outcome, tmp_path / "two.json").read_text())
    assert [m["model"] for m in several["models"]] == ["pop", "pop"]


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a run folder"):
        run_experiment(config(tmp_path / "nothing"))


def test_unknown_model_config_is_refused(shop_run):
    with pytest.raises(ValueError, match="model 'nope': unknown 'nope'"):
        config(shop_run, models=["nope"])
    with pytest.raises(ValueError, match="model 'a=nope': unknown 'nope'"):
        config(shop_run, models=["a=nope"])
    with pytest.raises(ValueError, match="label 'markov' is used twice"):
        config(shop_run, models=["markov", "markov=pop"])
    with pytest.raises(ValueError, match="expected NAME or LABEL=NAME"):
        config(shop_run, models=["=markov"])


def test_labels_compare_two_configurations_of_one_model(shop_run):
    outcome = run_experiment(
        config(
            shop_run,
            models=["first-order=markov", "markov"],
            params={"first-order": {"order": 1, "smoothing": 10.0}},
            n_resamples=100,
        )
    )
    first, default = outcome["results"]
    assert first["model"] == "first-order" and default["model"] == "markov"
    assert first["config"]["estimator"] == "markov" == default["config"]["estimator"]
    assert first["config"]["params"] == {"order": 1, "smoothing": 10.0}
    assert default["config"]["params"] == {}
    # Different parameters, different rankings: the labelled run really used its own.
    assert first["metrics"]["all"]["ndcg@10"] != default["metrics"]["all"]["ndcg@10"]
    pairs = {(c["a"], c["b"]) for c in outcome["comparisons"]}
    assert pairs == {("markov", "first-order")}


def test_time_protocol_runs_on_timestamped_logs(shop_run):
    outcome = run_experiment(config(shop_run, protocol="T", models=["pop"], seeds=1))
    result = outcome["results"][0]
    assert result["config"]["split"]["protocol"] == "T"
    assert np.isfinite(result["metrics"]["all"]["ndcg@10"]["mean"])


def test_early_stopped_models_report_their_validation_score(shop_run):
    stages: list[str] = []
    outcome = run_experiment(
        config(
            shop_run,
            models=["markov", "sasrec"],
            seeds=1,
            n_resamples=100,
            params={"sasrec": {"epochs": 2, "hidden": 16, "num_threads": 1}},
        ),
        on_stage=lambda stage, fraction: stages.append(stage),
    )
    markov, sasrec = outcome["results"]
    # Every model reports its validation NDCG@10 (what `run --export best` chooses on): an
    # early-stopped one its best epoch's, another the ranking of the validation cases.
    from shopaug.evaluate.ranking import evaluate_model
    from shopaug.workflow import prepare_training

    split, train = prepare_training(config(shop_run))
    fitted = make_model("markov").fit(train)
    (markov_score,) = markov["valid_ndcg@10"]
    assert markov_score == evaluate_model(fitted, split.valid, ks=(10,)).means()["ndcg@10"]
    assert markov["valid_best_epoch"] == [None]
    (score,) = sasrec["valid_ndcg@10"]
    (epoch,) = sasrec["valid_best_epoch"]
    assert 0.0 < score <= 1.0 and 1 <= epoch <= 2
    # The curve of every epoch is in the results, and the progress line showed it as it ran.
    assert markov["training_curves"] == []
    (curve,) = sasrec["training_curves"]
    assert [point["epoch"] for point in curve] == [1.0, 2.0]
    assert all(point["loss"] > 0 for point in curve)
    assert max(point["valid_ndcg10"] for point in curve) == pytest.approx(score)
    shown = [s for s in stages if "valid NDCG@10" in s]
    assert len(shown) == 2 and "epoch 2, loss " in shown[1] and f"at epoch {epoch}" in shown[1]


def test_model_runs_round_trip_through_a_folder(shop_run, tmp_path):
    from shopaug.workflow import ModelRuns, prepare_training, run_model

    experiment = config(shop_run, models=["markov"], seeds=2)
    split, train = prepare_training(experiment)
    runs = run_model("markov", {"order": 2}, split, train, experiment, label="m2")
    runs.save(tmp_path)
    back = ModelRuns.load(tmp_path)
    assert (back.label, back.estimator, back.params) == ("m2", "markov", {"order": 2})
    assert len(back.results) == 2 and back.fit_seconds == runs.fit_seconds
    np.testing.assert_array_equal(back.results[1].ranks, runs.results[1].ranks)
