"""Several augmentation plans for one model on one protocol, every pair compared with CIs.

`shopaug bench rec --augment` compares one plan with no augmentation. Deciding between two ways
of making samples (the encoder-only cold-neighbours of issue 4 against the LLM judge of issue 5,
say) needs the difference between two augmented runs, with its paired bootstrap CI over the same
test users. Besides the benchmark's slices this adds ``cold-covered``: cold targets that every
augmented plan generated samples for, so that a plan which only reached part of the cold items
(an LLM run with ``limit``) is compared where it actually spoke; with ``--text-expansion``, also
``cold-expanded``: cold targets whose item has a kept phrase.

    export HF_HUB_OFFLINE=1
    .venv/bin/python benchmarks/compare_plans.py --protocol C --model sasrec --seeds 3 \\
        --plans '{"none": null, "neighbours": {"strategies": ["cold-neighbours"]}}' \\
        --out runs/issue5/plans.json

Plans are ``AugmentPlan`` fields as JSON; LLM strategies read their backend from their own
parameters (``{"llm-cold": {"generator": "local", "limit": 200}}``) and reuse the response cache,
so only the first seed pays for the calls.

``--text-expansion FILE`` (an ``expansions.parquet`` of ``shopaug augment -s llm-expand``) also
runs every plan on item texts with the file's kept phrases appended, as ``PLAN+expand``: the pair
``PLAN`` / ``PLAN+expand`` is the effect of the expansion, over the same split and test users.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shopaug.augment.llm_expand import read_expansions
from shopaug.data.splits import Split
from shopaug.evaluate.stats import compare_runs, summarize_runs
from shopaug.models.augmented import AugmentPlan
from shopaug.workflow import AugmentedTrain, Experiment, case_slices, prepare_training, run_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-scientific"
METRICS = ("ndcg@10", "recall@20")


def generated_items(variant: AugmentedTrain, seeds: int) -> set[int]:
    """Items that occur in the generated rows of any seed of a plan."""
    items: set[int] = set()
    for seed in range(seeds):
        train = variant.for_seed(seed).train
        start = int(train.sequences.indptr[train.n_real_rows])
        items.update(np.unique(train.sequences.items[start:]).tolist())
    return items


def expanded_items(path: Path, split: Split) -> np.ndarray:
    """Per test case, whether its target has a kept phrase in the expansion file: a run with
    ``--limit`` expands only some cold items, and the effect is seen where it spoke."""
    kept = read_expansions(path, split.n_items)
    has_phrase = np.zeros(split.n_items, dtype=bool)
    has_phrase[kept["item"].to_numpy()] = True
    return has_phrase[split.test.targets]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--protocol", default="C", choices=["W", "C", "S"])
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--params", default='{"num_threads": 1}', help="model params, JSON")
    parser.add_argument("--plans", required=True, help="JSON object: name -> plan fields or null")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--text-expansion", type=Path, help="expansions.parquet of llm-expand")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)

    params = json.loads(args.params)
    config = Experiment(
        data=args.data,
        protocol=args.protocol,
        models=[args.model],
        seeds=args.seeds,
        work_dir=Path("runs/bench"),
    )
    started = time.perf_counter()
    split, train = prepare_training(config)
    plans = {
        name: (AugmentPlan(**fields) if fields is not None else None)
        for name, fields in json.loads(args.plans).items()
    }
    trains = {name: train for name in plans}
    if args.text_expansion is not None:
        expanded = config.model_copy(update={"text_expansion": args.text_expansion})
        twin_split, twin = prepare_training(expanded)
        assert np.array_equal(twin_split.test.targets, split.test.targets), "splits differ"
        trains |= {f"{name}+expand": twin for name in plans}
        plans |= {f"{name}+expand": plan for name, plan in plans.items()}
    variants = {n: AugmentedTrain(trains[n], p) if p else None for n, p in plans.items()}
    runs = {}
    for name, variant in variants.items():
        print(f"[{time.perf_counter() - started:7.0f} s] {name}", flush=True)
        runs[name] = run_model(args.model, params, split, trains[name], config, augmented=variant)

    masks = case_slices(split, train)
    cold = split.cold_mask() if len(split.cold_items) else None
    covered = [generated_items(v, args.seeds) for v in variants.values() if v is not None]
    if cold is not None and covered:
        shared = np.zeros(split.n_items, dtype=bool)
        shared[sorted(set.intersection(*covered))] = True
        masks["cold-covered"] = masks["cold"] & shared[split.test.targets]
    if cold is not None and args.text_expansion is not None:
        masks["cold-expanded"] = masks["cold"] & expanded_items(args.text_expansion, split)
    slices = ["all", "cold", "cold-covered", "cold-expanded", "warm"]
    slices = [s for s in slices if s in masks and masks[s].any()]

    summary = {
        name: summarize_runs(r.results, {s: masks[s] for s in slices}, config.ks)
        for name, r in runs.items()
    }
    comparisons = []
    for (a, ra), (b, rb) in itertools.combinations(runs.items(), 2):
        for s, metric in itertools.product(slices, METRICS):
            diff = compare_runs(rb.results, ra.results, metric, masks[s])
            comparisons.append({"a": b, "b": a, "slice": s, "metric": metric} | diff.to_dict())
    out: dict[str, Any] = {
        "protocol": args.protocol,
        "model": args.model,
        "params": params,
        "plans": {n: (p.model_dump() if p else None) for n, p in plans.items()},
        "text_expansion": None if args.text_expansion is None else str(args.text_expansion),
        "slice_sizes": {s: int(masks[s].sum()) for s in slices},
        "metrics": summary,
        "augmentation": {n: r.augmentation for n, r in runs.items()},
        "valid_ndcg@10": {n: r.valid_scores for n, r in runs.items()},
        "comparisons": comparisons,
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))

    print(f"slices: {out['slice_sizes']}")
    for name in runs:
        cells = [
            f"{s} {summary[name][s][m]['mean']:.4f}"
            for s in slices
            for m in METRICS
            if m in summary[name][s]
        ]
        print(f"{name:>14}: " + "  ".join(cells))
    for c in comparisons:
        if c["slice"] in ("cold", "cold-covered", "cold-expanded", "all"):
            lo, hi = c["ci"]
            print(
                f"{c['a']} - {c['b']} [{c['slice']} {c['metric']}]: "
                f"{c['mean_diff']:+.4f} [{lo:+.4f}, {hi:+.4f}] p={c['p_value']:.3f}"
            )


if __name__ == "__main__":
    main()
