"""Uncertainty of benchmark numbers: bootstraps over test users, and spread over training seeds.

Two sources of noise are reported separately, as BENCHMARK.md asks. Seeds (model training noise)
give a mean and a standard deviation over runs. Test users (which users happened to be in the
test set) give a bootstrap confidence interval, computed on the seed-averaged per-user metric so
that one interval describes the system rather than one lucky seed. A claimed difference between
two systems gets a paired bootstrap: both systems are judged on the same resampled users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shopaug.evaluate.ranking import RankingResult

#: Resample rows are drawn this many (users x resamples) entries at a time, to bound memory.
_CHUNK_ENTRIES = 1 << 21


@dataclass(frozen=True)
class BootstrapResult:
    """Mean difference ``a - b``, its percentile confidence interval and two-sided p-value."""

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float

    def to_dict(self) -> dict[str, float]:
        return {
            "mean_diff": self.mean_diff,
            "ci": [self.ci_low, self.ci_high],
            "p_value": self.p_value,
        }


@dataclass(frozen=True)
class MeanCI:
    """A mean and its bootstrap percentile confidence interval."""

    mean: float
    ci_low: float
    ci_high: float


def bootstrap_means(values: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``n_resamples`` resamples of the rows of ``values`` (n,) or (n, m), with replacement.

    All columns share the same resampled rows (so metrics of one system, or the two systems of a
    paired test, move together). Each chunk of resamples becomes a (resamples x n) matrix of
    counts and one matrix product, instead of a Python loop over resamples.
    """
    values = np.asarray(values, dtype=np.float64)
    matrix = values.reshape(len(values), -1)
    n = len(matrix)
    if n == 0:
        raise ValueError("cannot bootstrap an empty set of cases")
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ENTRIES // n)
    out = np.empty((n_resamples, matrix.shape[1]))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        picks = rng.integers(0, n, size=(size, n)) + np.arange(size)[:, None] * n
        counts = np.bincount(picks.ravel(), minlength=size * n).reshape(size, n)
        out[start : start + size] = counts @ matrix / n
    return out.reshape((n_resamples, *values.shape[1:]))


def bootstrap_mean_ci(
    values: np.ndarray, n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> MeanCI:
    """Mean of ``values`` over cases and its (1 - alpha) percentile bootstrap interval."""
    values = np.asarray(values, dtype=np.float64)
    low, high = _percentile_ci(bootstrap_means(values, n_resamples, seed), alpha)
    return MeanCI(float(values.mean()), float(low), float(high))


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> BootstrapResult:
    """Paired bootstrap of ``mean(a - b)`` over cases (users), resampled with replacement.

    The p-value tests "no difference" by shifting the bootstrap distribution to mean 0:
    ``(1 + #{|d*_b - d| >= |d|}) / (n_resamples + 1)``, where d is the observed mean difference and
    d*_b the resampled ones; identical systems give p = 1.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same shape, got {a.shape} and {b.shape}")
    diff = a - b
    observed = float(diff.mean())
    resampled = bootstrap_means(diff, n_resamples, seed)
    low, high = _percentile_ci(resampled, alpha)
    extreme = np.count_nonzero(np.abs(resampled - observed) >= abs(observed))
    p_value = (1 + extreme) / (n_resamples + 1)
    return BootstrapResult(observed, float(low), float(high), float(p_value))


def _percentile_ci(resampled: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    low, high = np.quantile(resampled, [alpha / 2, 1 - alpha / 2], axis=0)
    return low, high


def seed_summary(per_seed_values: Sequence[float]) -> dict[str, float | list[float] | None]:
    """Mean and sample standard deviation (ddof=1) over training seeds, plus the values.

    With a single seed the spread is unknown, so ``std`` is None (null in JSON), not a false 0.
    """
    values = [float(v) for v in per_seed_values]
    if not values:
        raise ValueError("seed_summary needs at least one seed")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": float(np.mean(values)), "std": std, "per_seed": values}


def seed_averaged(runs: Sequence[RankingResult], ks: Sequence[int] | None = None) -> dict:
    """Per-case metrics averaged over runs (seeds) of the same cases."""
    _check_same_cases(runs)
    per_run = [run.per_case(ks) for run in runs]
    return {name: np.mean([values[name] for values in per_run], axis=0) for name in per_run[0]}


def summarize_runs(
    results: Sequence[RankingResult],
    masks: Mapping[str, np.ndarray],
    ks: Sequence[int] | None = None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, dict[str, dict]]:
    """The ``"metrics"`` part of a benchmark JSON: slice -> metric -> mean, ci, std, per_seed.

    ``mean``/``std``/``per_seed`` describe the spread over seeds of each seed's mean over the
    slice's cases; ``ci`` is the bootstrap interval over the slice's test users of the
    seed-averaged per-user metric. Slices without cases are left out.
    """
    per_seed = [run.per_case(ks) for run in results]
    averaged = seed_averaged(results, ks)
    names = list(averaged)
    out: dict[str, dict[str, dict]] = {}
    for slice_name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            continue
        matrix = np.column_stack([averaged[name][mask] for name in names])
        lows, highs = _percentile_ci(bootstrap_means(matrix, n_resamples, seed), alpha)
        out[slice_name] = {
            name: {
                **seed_summary([float(values[name][mask].mean()) for values in per_seed]),
                "ci": [float(lows[j]), float(highs[j])],
            }
            for j, name in enumerate(names)
        }
    return out


def compare_runs(
    a_runs: Sequence[RankingResult],
    b_runs: Sequence[RankingResult],
    metric: str,
    mask: np.ndarray | None = None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> BootstrapResult:
    """Paired bootstrap of system a minus system b on one metric, seed-averaged per user."""
    _check_same_cases([*a_runs, *b_runs])
    ks = _ks_of(metric, a_runs[0].ks)
    a = seed_averaged(a_runs, ks)
    b = seed_averaged(b_runs, ks)
    if metric not in a:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(a)}")
    keep = slice(None) if mask is None else np.asarray(mask, dtype=bool)
    return paired_bootstrap(a[metric][keep], b[metric][keep], n_resamples, seed, alpha)


def _ks_of(metric: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """The cut-off named in ``ndcg@20`` (so any K can be compared), else the runs' own."""
    _, _, k = metric.partition("@")
    return (int(k),) if k.isdigit() else default


def _check_same_cases(runs: Sequence[RankingResult]) -> None:
    """Averaging or pairing runs only makes sense on the same cases in the same order."""
    if not runs:
        raise ValueError("need at least one run")
    first = runs[0]
    for run in runs[1:]:
        if not (
            np.array_equal(run.targets, first.targets) and np.array_equal(run.users, first.users)
        ):
            raise ValueError("runs were evaluated on different cases; they cannot be paired")
