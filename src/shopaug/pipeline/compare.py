"""``shopaug compare RUN_A RUN_B``: metric differences of two runs with paired bootstrap CIs.

Each run folder holds ``per_user.parquet`` (seed-averaged metrics of every test case and model).
The same model in both runs is paired case by case (same user, same target), so the interval is
the paired one of :func:`~shopaug.evaluate.stats.paired_bootstrap`; runs on different splits
share no cases and cannot be compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from shopaug.evaluate.stats import paired_bootstrap
from shopaug.workflow import COMPARED_METRICS

PER_USER = "per_user.parquet"
KEYS = ["user", "target"]


def read_per_user(run: Path) -> pd.DataFrame:
    path = Path(run) / PER_USER
    if not path.exists():
        raise FileNotFoundError(f"{run}: not a run folder of `shopaug run` (no {PER_USER})")
    return pd.read_parquet(path)


def compare_run_folders(
    run_a: Path,
    run_b: Path,
    metrics: tuple[str, ...] = COMPARED_METRICS,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per model in both runs, slice and metric: mean of a, of b, a - b, its 95% CI and p."""
    a, b = read_per_user(run_a), read_per_user(run_b)
    models = [m for m in a["model"].unique() if m in set(b["model"])]
    if not models:
        raise ValueError(
            f"{run_a} and {run_b} share no model (a: {sorted(a['model'].unique())}, "
            f"b: {sorted(b['model'].unique())})"
        )
    missing = [m for m in metrics if m not in a.columns or m not in b.columns]
    if missing:
        raise ValueError(f"metric {missing[0]!r} is not in both runs")
    slices = [c for c in a.columns if c.startswith("in:") and c in b.columns]
    rows = []
    for model in models:
        pairs = a[a["model"] == model].merge(
            b[b["model"] == model], on=KEYS, suffixes=("_a", "_b"), validate="one_to_one"
        )
        if pairs.empty:
            raise ValueError(f"{model}: the runs share no test case (different data or split?)")
        for column in slices:
            mask = pairs[f"{column}_a"].to_numpy(bool)
            if not mask.any():
                continue
            for metric in metrics:
                va = pairs[f"{metric}_a"].to_numpy()[mask]
                vb = pairs[f"{metric}_b"].to_numpy()[mask]
                result = paired_bootstrap(va, vb, n_resamples, seed)
                rows.append(
                    {
                        "model": model,
                        "slice": column.removeprefix("in:"),
                        "metric": metric,
                        "cases": int(mask.sum()),
                        "a": float(va.mean()),
                        "b": float(vb.mean()),
                    }
                    | result.to_dict()
                )
    return rows
