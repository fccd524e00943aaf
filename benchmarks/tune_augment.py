"""Choose augmentation plans on validation only (BENCHMARK.md: "select ... on validation only").

Each plan in ``--grid`` (a JSON list of ``AugmentPlan`` fields; ``null`` means no augmentation)
augments the protocol's training rows with one seed, fits the model, and records the model's best
validation NDCG@10. Test cases are never scored here; run ``shopaug bench rec --augment ...``
with the chosen plan to report test once.

    export HF_HUB_OFFLINE=1
    .venv/bin/python benchmarks/tune_augment.py --protocol S --out runs/tune/augment-S.jsonl \\
        --grid '[null, {"strategies": ["crop", "substitute", "insert"]}]'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from shopaug.evaluate.benchmark import RecBenchConfig, prepare_training
from shopaug.models import make_model
from shopaug.models.augmented import AugmentPlan, augment_train

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-scientific"


def run_plan(
    plan: AugmentPlan | None, model: str, params: dict[str, Any], config: RecBenchConfig, seed: int
) -> dict[str, Any]:
    """Fit once on real (+ generated) rows; return validation figures and sample counts."""
    _, train = prepare_training(config)
    summary: dict[str, Any] = {}
    if plan is not None:
        augmentation = augment_train(train, plan, seed)
        train, summary = augmentation.train, augmentation.summary()
    estimator = make_model(model, **{"seed": seed, "num_threads": 1, **params})
    started = time.perf_counter()
    estimator.fit(train)
    return {
        "valid_ndcg@10": float(estimator.best_score_),
        "best_epoch": estimator.best_epoch_,
        "fit_seconds": round(time.perf_counter() - started, 1),
        "kept": summary.get("kept", {}),
    }


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
    parser.add_argument("--out", type=Path, default=Path("runs/tune/augment.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = RecBenchConfig(
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
            **run_plan(plan, args.model, params, config, args.seed),
        }
        print(json.dumps(record), flush=True)
        with args.out.open("a") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
