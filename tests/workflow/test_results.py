"""Slices, summaries and comparisons of one experiment agree on which case is where."""

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from shopaug.workflow import (
    Experiment,
    case_slices,
    compare_models,
    per_user_frame,
    prepare_training,
    run_model,
)


@pytest.fixture(scope="module")
def runs(shop_run):
    config = Experiment(
        data=shop_run,
        protocol="C",
        models=["pop", "markov"],
        seeds=2,
        embed_items=False,
        n_resamples=100,
    )
    split, train = prepare_training(config)
    fitted = [run_model(name, {}, split, train, config) for name in ("pop", "markov")]
    return split, train, fitted


def test_slices_partition_the_cases(runs):
    split, train, _ = runs
    slices = case_slices(split, train)
    assert slices["all"].all() and len(slices["all"]) == len(split.test)
    np.testing.assert_array_equal(slices["cold"], ~slices["warm"])
    popularity = slices["pop_low"].astype(int) + slices["pop_mid"] + slices["pop_high"]
    assert (popularity == 1).all()


def test_comparisons_share_one_record_shape_and_skip_empty_slices(runs):
    split, train, fitted = runs
    slices = case_slices(split, train)
    slices["nobody"] = np.zeros(len(split.test), dtype=bool)
    records = compare_models(fitted, slices, n_resamples=100)
    assert {r["slice"] for r in records} == set(slices) - {"nobody"}
    for record in records:
        assert set(record) == {"a", "b", "slice", "metric", "mean_diff", "ci", "p_value"}
        assert (record["a"], record["b"]) == ("markov", "pop")
        assert record["ci"][0] <= record["mean_diff"] <= record["ci"][1]


def test_an_augmented_model_is_also_compared_with_itself(runs):
    split, train, (pop, markov) = runs
    slices = {"all": case_slices(split, train)["all"]}
    # Stands in for markov+aug: markov's own rankings, so its lift over markov is exactly 0.
    augmented = replace(markov, augmented=True)
    assert augmented.label == "markov+aug"

    records = compare_models([pop, markov, augmented], slices, n_resamples=100)
    pairs = Counter((r["a"], r["b"]) for r in records)
    per_pair = len(slices) * 4  # COMPARED_METRICS
    assert pairs == {
        ("markov", "pop"): per_pair,
        ("markov+aug", "pop"): per_pair,
        ("markov+aug", "markov"): per_pair,
    }
    ndcg = {(r["a"], r["b"]): r for r in records if r["metric"] == "ndcg@10"}
    assert ndcg["markov+aug", "markov"]["mean_diff"] == 0.0
    assert ndcg["markov+aug", "pop"]["mean_diff"] == ndcg["markov", "pop"]["mean_diff"] > 0

    # With the un-augmented model as the baseline, its pair is the baseline pair, once.
    records = compare_models([markov, augmented], slices, n_resamples=100)
    assert Counter((r["a"], r["b"]) for r in records) == {("markov+aug", "markov"): per_pair}


def test_the_per_case_table_carries_the_same_slices(runs):
    split, train, fitted = runs
    slices = case_slices(split, train)
    frame = per_user_frame(fitted, slices)
    assert len(frame) == 2 * len(split.test)
    pop = frame[frame["model"] == "pop"]
    np.testing.assert_array_equal(pop["in:cold"].to_numpy(), slices["cold"])
    assert pop.loc[pop["in:cold"], "recall@50"].eq(0).all()  # popularity never finds cold items
