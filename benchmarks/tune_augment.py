"""Score a fixed grid of augmentation plans on validation only (BENCHMARK.md: "select ... on
validation only"). ``shopaug tune`` searches a space instead; this script reproduces the grids the
README's earlier figures were chosen with.

Each plan in ``--grid`` (a JSON list of ``AugmentPlan`` fields; ``null`` means no augmentation)
augments the protocol's training rows with one seed, fits the model, and records the model's best
validation NDCG@10. Test cases are never scored here; run ``shopaug bench rec --augment ...``
with the chosen plan to report test once.

Protocol C drops validation cases with cold targets (choosing on them would leak), so validation
says nothing about cold items. ``--inner-cold SEED`` answers that from training rows alone: it
applies protocol C again to the training split (other cold items, drawn with SEED), trains on the
inner training rows, and also scores the inner test cases (each training row's last event) by
cold and warm target. The outer validation and test cases are never read.

    export HF_HUB_OFFLINE=1
    .venv/bin/python benchmarks/tune_augment.py --protocol S --out runs/tune/augment-S.jsonl \\
        --grid '[null, {"strategies": ["crop", "substitute", "insert"]}]'
    .venv/bin/python benchmarks/tune_augment.py --protocol C --model content --inner-cold 1 \\
        --params '{"id_dropout": 0.5}' --grid '[null, {"strategies": ["mask", "insert"]}]'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from shopaug.data.splits import Split
from shopaug.models import TrainData, make_model
from shopaug.models.augmented import AugmentPlan, augment_train
from shopaug.workflow import Experiment, prepare_training
from shopaug.workflow.tune import Objective, inner_cold_training

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-scientific"


def inner_test(estimator: Any, inner: Split) -> dict[str, dict[str, float]]:
    """NDCG@10 and Recall@20 of the inner test cases, all and by cold / warm target."""
    _, figures = Objective(TrainData(inner.train, inner.n_items), inner).score(estimator)
    return {
        name: {k: round(figures[f"inner_{name}_{k}"], 5) for k in ("ndcg@10", "recall@20")}
        for name in ("all", "cold", "warm")
    }


def run_plan(
    plan: AugmentPlan | None,
    model: str,
    params: dict[str, Any],
    config: Experiment,
    seed: int,
    inner_cold: int | None = None,
) -> dict[str, Any]:
    """Fit once on real (+ generated) rows; return validation figures and sample counts."""
    inner = None
    if inner_cold is None:
        _, train = prepare_training(config)
    else:
        inner, train = inner_cold_training(config, inner_cold)
    summary: dict[str, Any] = {}
    if plan is not None:
        augmentation = augment_train(train, plan, seed)
        train, summary = augmentation.train, augmentation.summary()
    estimator = make_model(model, **{"seed": seed, "num_threads": 1, **params})
    started = time.perf_counter()
    estimator.fit(train)
    record = {
        "valid_ndcg@10": float(estimator.best_score_),
        "best_epoch": estimator.best_epoch_,
        "fit_seconds": round(time.perf_counter() - started, 1),
        "kept": summary.get("kept", {}),
    }
    if inner is not None:
        record["inner_test"] = inner_test(estimator, inner)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--protocol", default="S", choices=["W", "C", "S"])
    parser.add_argument(
        "--model", default="sasrec", help="an early-stopped model (sasrec, content)"
    )
    parser.add_argument("--params", default="{}", help="model parameters as JSON")
    parser.add_argument("--grid", required=True, help="JSON list of AugmentPlan fields or null")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--inner-cold",
        type=int,
        default=None,
        help="apply protocol C to the training rows with this seed and score its cold targets",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/tune/augment.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Experiment(
        data=args.data, protocol=args.protocol, models=[args.model], work_dir=Path("runs/bench")
    )
    params = json.loads(args.params)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for entry in json.loads(args.grid):
        plan = AugmentPlan(**entry) if entry is not None else None
        record = {
            "protocol": args.protocol,
            "model": args.model,
            "params": params,
            "seed": args.seed,
            "plan": plan.model_dump() if plan else None,
            "inner_cold": args.inner_cold,
            **run_plan(plan, args.model, params, config, args.seed, args.inner_cold),
        }
        print(json.dumps(record), flush=True)
        with args.out.open("a") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
