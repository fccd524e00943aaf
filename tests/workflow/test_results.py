"""Slices, summaries and comparisons of one experiment agree on which case is where."""

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


def test_the_per_case_table_carries_the_same_slices(runs):
    split, train, fitted = runs
    slices = case_slices(split, train)
    frame = per_user_frame(fitted, slices)
    assert len(frame) == 2 * len(split.test)
    pop = frame[frame["model"] == "pop"]
    np.testing.assert_array_equal(pop["in:cold"].to_numpy(), slices["cold"])
    assert pop.loc[pop["in:cold"], "recall@50"].eq(0).all()  # popularity never finds cold items
