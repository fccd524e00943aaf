"""``shopaug run CONFIG --export best``: the validation-best model of a run as a servable version.

A run compares models (and their ``+aug`` variants) on a protocol's split. The one to ship is
chosen on **validation** NDCG@10 (mean over seeds), never on test, and refit the way
``shopaug train`` fits: on every event, with the same parameters and augmentation plan, for the
number of epochs its validation peaked at (the median over seeds).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from shopaug.serve.bundle import TrainConfig, refit_params


def validation_means(results: list[dict[str, Any]]) -> dict[str, float]:
    """Mean validation NDCG@10 of each model of a run that has one."""
    return {
        r["model"]: statistics.fmean(r["valid_ndcg@10"]) for r in results if r.get("valid_ndcg@10")
    }


def pick(results: list[dict[str, Any]], which: str) -> dict[str, Any]:
    """The result record named ``which`` (a label such as ``sasrec+aug``), or with ``best`` the
    one with the highest mean validation NDCG@10 (the first on a tie)."""
    by_label = {r["model"]: r for r in results}
    if which != "best":
        if which not in by_label:
            raise ValueError(
                f"--export {which!r}: not a model of this run; it has {list(by_label)}"
            )
        return by_label[which]
    scores = validation_means(results)
    if not scores:
        raise ValueError("--export best: no model of this run has a validation score")
    return by_label[max(scores, key=lambda label: scores[label])]


def export_config(record: dict[str, Any], data: Path, results: list[dict[str, Any]]) -> TrainConfig:
    """How to refit the chosen model for serving (see the module docstring)."""
    config = record["config"]
    name = config["estimator"]
    epochs = [e for e in record.get("valid_best_epoch", []) if e is not None]
    best = int(statistics.median(epochs)) if epochs else None
    choices = [c for c in record.get("valid_choices", []) if c]
    params = refit_params(name, dict(config["params"]), best, choices)
    augmented = record["model"].endswith("+aug")
    scores = validation_means(results)
    return TrainConfig(
        data=data,
        model=name,
        params=params,
        encoder=config.get("encoder"),
        augment=config.get("augment") if augmented else None,
        tuning={
            "chosen_from": "shopaug run",
            "label": record["model"],
            "protocol": config.get("protocol"),
            "objective": "validation NDCG@10, mean over seeds",
            "score": scores.get(record["model"]),
            "baseline_score": scores.get(record["model"].removesuffix("+aug")),
            "candidates": scores,
        },
    )
