"""What a run's rankings say: metrics per slice over seeds, comparisons with the baseline (and of
each augmented model with itself), and the per-case table that ``shopaug compare`` pairs between
runs.

The slices of the test cases (all, cold/warm, popularity terciles) are computed once per split by
:func:`case_slices` and handed to every summary, so a model's table, its comparisons and the
per-case table always agree on which case is in which slice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shopaug.data.splits import Split
from shopaug.evaluate.metrics import beyond_accuracy, item_popularity
from shopaug.evaluate.ranking import slice_masks
from shopaug.evaluate.stats import compare_runs, seed_averaged, summarize_runs
from shopaug.models import TrainData

if TYPE_CHECKING:
    from shopaug.workflow.experiment import Experiment, ModelRuns

#: Metrics on which models are compared (paired bootstrap); see :func:`compare_models`.
COMPARED_METRICS = ("ndcg@10", "recall@10", "recall@20", "mrr")
Slices = dict[str, np.ndarray]


def case_slices(split: Split, train: TrainData) -> Slices:
    """Boolean masks over the test cases, one per slice, from the training popularity."""
    popularity = item_popularity(train.sequences, split.n_items)
    cold = split.cold_mask() if len(split.cold_items) else None
    return slice_masks(split.test.targets, popularity, cold)


def summarize_model(
    runs: ModelRuns, split: Split, train: TrainData, config: Experiment, slices: Slices
) -> dict[str, Any]:
    """The result record of one model (the shape the report and ``shopaug compare`` read)."""
    popularity = item_popularity(train.sequences, split.n_items)
    metrics = summarize_runs(runs.results, slices, config.ks, n_resamples=config.n_resamples)
    embeddings = train.items.embeddings if train.items else None
    beyond = [
        beyond_accuracy(r.top_items, split.n_items, popularity, len(train.sequences), embeddings)
        for r in runs.results
    ]
    return {
        "model": runs.label,
        "protocol": config.protocol,
        "metrics": metrics,
        "beyond": {k: float(np.mean([b[k] for b in beyond])) for k in beyond[0]},
        "seconds": float(sum(runs.fit_seconds) + sum(runs.eval_seconds)),
        "fit_seconds": runs.fit_seconds,
        "eval_seconds": runs.eval_seconds,
        "n_test_users": len(split.test),
        "valid_ndcg@10": runs.valid_scores,
        "valid_best_epoch": runs.best_epochs,
        "valid_choices": runs.valid_choices,
        "training_curves": runs.training_curves,
        "augmentation": runs.augmentation,
        "config": {
            **config.model_dump(mode="json", exclude={"params", "models"}),
            "estimator": runs.estimator or runs.name,
            "params": runs.params,
            "split": split.summary(),
        },
    }


def compare_models(
    all_runs: list[ModelRuns], slices: Slices, n_resamples: int
) -> list[dict[str, Any]]:
    """Each model against the first, and each ``MODEL+aug`` against its own ``MODEL``, per slice
    and metric: paired bootstrap over test cases.

    The first model is the baseline every run is measured against. With augmentation the question
    is also whether the generated rows helped the model they were added to, and ``MODEL+aug``
    minus the first model mixes that lift with the gap between the two models; so an augmented
    run is also compared with the un-augmented run of the same name (unless that run is the
    baseline, whose pair is already there). Each record is ``{a, b, slice, metric, mean_diff, ci,
    p_value}`` (``a`` and ``b`` the labels, difference ``a - b``), the same shape as the search
    benchmark's comparisons.
    """
    out = []
    for other, base in comparison_pairs(all_runs):
        for slice_name, mask in slices.items():
            if not mask.any():
                continue
            for metric in COMPARED_METRICS:
                result = compare_runs(
                    other.results, base.results, metric, mask, n_resamples=n_resamples
                )
                out.append(
                    {"a": other.label, "b": base.label, "slice": slice_name, "metric": metric}
                    | result.to_dict()
                )
    return out


def comparison_pairs(all_runs: list[ModelRuns]) -> list[tuple[ModelRuns, ModelRuns]]:
    """``(run, reference)`` of :func:`compare_models`: every run after the first with the first,
    each augmented one then also with its un-augmented run, each pair once."""
    base = all_runs[0]
    plain = {runs.name: runs for runs in all_runs if not runs.augmented}
    pairs = []
    for other in all_runs[1:]:
        pairs.append((other, base))
        own = plain.get(other.name) if other.augmented else None
        if own is not None and own.label != base.label:
            pairs.append((other, own))
    return pairs


def per_user_frame(all_runs: Iterable[ModelRuns], slices: Slices) -> pd.DataFrame:
    """Seed-averaged metrics of every test case and model, with the slices each case is in.

    This is what ``shopaug compare`` pairs between two runs (same users, same targets).
    """
    frames = []
    for runs in all_runs:
        first = runs.results[0]
        frame = pd.DataFrame({"model": runs.label, "user": first.users, "target": first.targets})
        for metric, values in seed_averaged(runs.results).items():
            frame[metric] = values
        for slice_name, mask in slices.items():
            frame[f"in:{slice_name}"] = np.asarray(mask, dtype=bool)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
