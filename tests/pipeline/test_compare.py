import numpy as np
import pandas as pd
import pytest

from shopaug.pipeline.compare import compare_run_folders


def write_run(folder, ndcg, model="sasrec", users=None):
    folder.mkdir(parents=True)
    n = len(ndcg)
    frame = pd.DataFrame(
        {
            "model": model,
            "user": users if users is not None else [f"u{i}" for i in range(n)],
            "target": np.arange(n),
            "ndcg@10": ndcg,
            "recall@10": np.asarray(ndcg) > 0,
            "in:all": True,
            "in:cold": np.arange(n) % 2 == 0,
        }
    )
    frame["recall@10"] = frame["recall@10"].astype(float)
    frame.to_parquet(folder / "per_user.parquet")
    return folder


def test_differences_come_with_paired_intervals(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.random(200)
    a = write_run(tmp_path / "a", base + 0.1)
    b = write_run(tmp_path / "b", base)
    rows = compare_run_folders(a, b, metrics=("ndcg@10",), n_resamples=200)
    assert [(r["slice"], r["cases"]) for r in rows] == [("all", 200), ("cold", 100)]
    for row in rows:
        assert row["mean_diff"] == pytest.approx(0.1)
        low, high = row["ci"]
        assert low <= 0.1 <= high and low > 0  # a constant gain: a tight interval around it
    same = compare_run_folders(b, b, metrics=("ndcg@10",), n_resamples=200)
    assert same[0]["mean_diff"] == 0 and same[0]["p_value"] == 1


def test_runs_that_cannot_be_paired_are_refused(tmp_path):
    a = write_run(tmp_path / "a", [0.1, 0.2])
    other_model = write_run(tmp_path / "b", [0.1, 0.2], model="pop")
    with pytest.raises(ValueError, match="share no model"):
        compare_run_folders(a, other_model)
    other_users = write_run(tmp_path / "c", [0.1, 0.2], users=["x", "y"])
    with pytest.raises(ValueError, match="share no test case"):
        compare_run_folders(a, other_users, metrics=("ndcg@10",))
    with pytest.raises(ValueError, match="not in both runs"):
        compare_run_folders(a, a, metrics=("mrr",))
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        compare_run_folders(tmp_path / "missing", a)
