import numpy as np
import pytest

from shopaug.evaluate.ranking import RankingResult
from shopaug.evaluate.stats import (
    bootstrap_mean_ci,
    bootstrap_means,
    compare_runs,
    paired_bootstrap,
    seed_summary,
    summarize_runs,
)


def run(ranks: list[int] | np.ndarray, users: np.ndarray | None = None) -> RankingResult:
    ranks = np.asarray(ranks)
    n = len(ranks)
    return RankingResult(
        ranks=ranks,
        targets=np.zeros(n, dtype=np.int64),
        top_items=np.zeros((n, 10), dtype=np.int64),
        users=np.arange(n) if users is None else users,
        n_items=100,
        ks=(1, 10),
        seconds=0.0,
    )


def test_bootstrap_means_equal_explicit_resampling():
    rng = np.random.default_rng(0)
    values = rng.random((50, 2))
    means = bootstrap_means(values, n_resamples=200, seed=7)
    picks = np.random.default_rng(7).integers(0, 50, size=(200, 50))
    np.testing.assert_allclose(means, values[picks].mean(axis=1))


def test_paired_bootstrap_finds_a_clear_shift():
    rng = np.random.default_rng(1)
    b = rng.random(2000)
    a = b + 0.1 + rng.normal(0, 0.05, 2000)
    result = paired_bootstrap(a, b)
    assert result.ci_low < 0.1 < result.ci_high
    assert result.ci_low > 0
    assert result.mean_diff == pytest.approx(np.mean(a - b))
    assert result.p_value == pytest.approx(1 / 1001)


def test_paired_bootstrap_covers_zero_without_a_difference():
    same = np.random.default_rng(2).random(500)
    identical = paired_bootstrap(same, same.copy())
    assert (identical.mean_diff, identical.ci_low, identical.ci_high) == (0, 0, 0)
    assert identical.p_value == 1.0
    rng = np.random.default_rng(3)
    noisy = paired_bootstrap(rng.random(500), rng.random(500))
    assert noisy.ci_low < 0 < noisy.ci_high
    assert noisy.p_value > 0.05


def test_bootstrap_is_deterministic_with_a_seed():
    rng = np.random.default_rng(4)
    a, b = rng.random(300), rng.random(300)
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
    assert paired_bootstrap(a, b, seed=5) != paired_bootstrap(a, b, seed=6)


def test_bootstrap_mean_ci_width_matches_the_standard_error():
    values = np.random.default_rng(5).normal(3.0, 1.0, 2000)
    ci = bootstrap_mean_ci(values, n_resamples=1000)
    half_width = (ci.ci_high - ci.ci_low) / 2
    assert ci.ci_low < ci.mean < ci.ci_high
    assert half_width == pytest.approx(1.96 * values.std() / np.sqrt(2000), rel=0.15)
    constant = bootstrap_mean_ci(np.full(10, 0.25))
    assert (constant.mean, constant.ci_low, constant.ci_high) == pytest.approx((0.25,) * 3)


def test_paired_bootstrap_checks_shapes():
    with pytest.raises(ValueError, match="same shape"):
        paired_bootstrap(np.zeros(3), np.zeros(4))


def test_seed_summary():
    summary = seed_summary([1.0, 2.0, 3.0])
    assert summary == {"mean": 2.0, "std": 1.0, "per_seed": [1.0, 2.0, 3.0]}
    assert seed_summary([0.5])["std"] is None


def test_summarize_runs_per_slice_and_metric():
    seed_a = run([0, 0, 5, 20])
    seed_b = run([0, 3, 20, 20])
    masks = {
        "all": np.ones(4, bool),
        "first": np.array([1, 1, 0, 0], bool),
        "none": np.zeros(4, bool),
    }
    summary = summarize_runs([seed_a, seed_b], masks, n_resamples=200)
    assert set(summary) == {"all", "first"}  # empty slices are left out
    assert list(summary["all"]) == ["recall@1", "ndcg@1", "recall@10", "ndcg@10", "mrr"]
    recall10 = summary["all"]["recall@10"]
    assert recall10["per_seed"] == [0.75, 0.5]
    assert recall10["mean"] == pytest.approx(0.625)
    assert recall10["std"] == pytest.approx(np.std([0.75, 0.5], ddof=1))
    low, high = recall10["ci"]
    assert 0 <= low <= 0.625 <= high <= 1
    assert summary["first"]["recall@1"]["per_seed"] == [1.0, 0.5]
    assert summary["first"]["mrr"]["mean"] == pytest.approx((1 + 1 + 1 + 0.25) / 4)


def test_compare_runs_pairs_seed_averaged_users():
    rng = np.random.default_rng(6)
    good = [run(rng.integers(0, 5, 400)) for _ in range(3)]
    bad = [run(rng.integers(5, 40, 400)) for _ in range(3)]
    result = compare_runs(good, bad, "recall@10")
    assert result.mean_diff == pytest.approx(
        np.mean([r.means()["recall@10"] for r in good])
        - np.mean([r.means()["recall@10"] for r in bad])
    )
    assert result.ci_low > 0
    subset = compare_runs(good, bad, "ndcg@20", mask=np.arange(400) < 100)
    assert subset.mean_diff > 0
    with pytest.raises(ValueError, match="different cases"):
        compare_runs(good, [run(np.zeros(400, int), users=np.arange(400) + 1)], "mrr")
