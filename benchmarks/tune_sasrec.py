"""Tune and benchmark SASRec and the content-aware SASRec on Amazon Scientific (BENCHMARK.md).

Selection uses validation only: ``grid`` fits each configuration on one seed and never looks at
test; ``final`` fits the chosen configuration on three seeds and evaluates test once. Every run
appends one JSON line to ``--out`` (and saves per-case test ranks next to it for bootstraps).

    export HF_HUB_OFFLINE=1
    B=".venv/bin/python benchmarks/tune_sasrec.py --out runs/tune/results.jsonl"
    $B grid --model sasrec --grid '[{"dropout": 0.2}, {"dropout": 0.5}]'     # valid only
    $B final --model sasrec --params '{"dropout": 0.5}' --seeds 0 1 2         # valid + test
    $B final --model markov --grid '[{"smoothing": 0.1}, {"smoothing": 1}]'   # picks on valid
    $B final --model content --protocol C --params '{"mode": "text"}' --seeds 0 1 2
    $B summary                                  # markdown tables + paired bootstrap vs markov

Torch runs on one thread: on a shared 2-core machine, two intra-op threads wait on each other
whenever the other core is busy, which made an epoch ten times slower in our measurements.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shopaug.data.dataset import Dataset
from shopaug.data.ingest import IngestSpec, ingest
from shopaug.data.splits import Split, make_split
from shopaug.data.store import DatasetStore
from shopaug.encode import TextEncoder
from shopaug.evaluate import evaluate_model, paired_bootstrap, slice_masks
from shopaug.models.base import ItemSide, Recommender, TrainData
from shopaug.models.content import ContentSASRec
from shopaug.models.markov import MarkovChain
from shopaug.models.sasrec import SASRec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-scientific"
KS = (10, 20, 50)
NEURAL = {"sasrec": SASRec, "content": ContentSASRec}


def load_dataset(run_dir: Path) -> Dataset:
    """Ingest the Amazon files once into ``run_dir`` and load the store."""
    if not DatasetStore(run_dir).exists():
        ingest(IngestSpec.amazon(DATA), run_dir)
    return Dataset.load(run_dir)


def train_data(ds: Dataset, split: Split, cache_dir: Path | None) -> TrainData:
    """The brief's TrainData: training sequences, item texts and their MiniLM embeddings."""
    texts = ds.item_texts()
    embeddings = TextEncoder(cache_dir=cache_dir).encode(texts)
    return TrainData(
        split.train,
        ds.n_items,
        split.train_user_index,
        ds.n_users,
        ItemSide(texts=texts, embeddings=embeddings),
        valid=split.valid,
    )


def make(model: str, params: dict[str, Any], seed: int) -> Recommender:
    if model == "markov":
        return MarkovChain(**params)
    return NEURAL[model](seed=seed, num_threads=1, **params)


def rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 5) for k, v in metrics.items()}


def run_one(
    model_name: str,
    params: dict[str, Any],
    seed: int,
    split: Split,
    data: TrainData,
    with_test: bool,
    ranks_dir: Path,
) -> dict[str, Any]:
    """Fit one model, evaluate valid (and test with cold/warm slices if ``with_test``)."""
    model = make(model_name, params, seed)
    started = time.perf_counter()
    model.fit(data)
    record: dict[str, Any] = {
        "model": model_name,
        "protocol": split.protocol,
        "params": params,
        "seed": seed,
        "fit_seconds": round(time.perf_counter() - started, 1),
        "valid": rounded(evaluate_model(model, split.valid, ks=KS).means()),
    }
    if hasattr(model, "epoch_seconds_"):
        record["epochs_run"] = len(model.epoch_seconds_)
        record["best_epoch"] = model.best_epoch_
        record["seconds_per_epoch"] = round(float(np.median(model.epoch_seconds_)), 2)
    if with_test:
        result = evaluate_model(model, split.test, ks=KS)
        record["eval_seconds"] = round(result.seconds, 2)
        masks = slice_masks(result.targets, np.ones(split.n_items), split.cold_mask())
        for name in ("all", "cold", "warm") if split.protocol == "C" else ("all",):
            record[f"test_{name}"] = rounded(result.means(masks[name]))
        record["test_cases"] = {name: int(masks[name].sum()) for name in ("cold", "warm")}
        tag = f"{model_name}-{split.protocol}-{_slug(params)}-s{seed}"
        np.save(ranks_dir / f"{tag}.npy", result.ranks)
        record["ranks_file"] = f"{tag}.npy"
    print(json.dumps(record), flush=True)
    return record


def _slug(params: dict[str, Any]) -> str:
    return "_".join(f"{k}={v}" for k, v in sorted(params.items())) or "default"


def choose_on_valid(records: list[dict[str, Any]]) -> dict[str, Any]:
    return max(records, key=lambda r: r["valid"]["ndcg@10"])


def command_runs(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    ds = load_dataset(args.run_dir)
    split = make_split(args.protocol, ds.sequences(), ds.n_items)
    data = train_data(ds, split, args.cache_dir)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = json.loads(args.grid) if args.grid else [json.loads(args.params)]
    with_test = args.command == "final"
    if with_test and len(grid) > 1:  # several candidates: choose on valid (seed 0), then test
        candidates = [run_one(args.model, p, 0, split, data, False, out.parent) for p in grid]
        grid = [choose_on_valid(candidates)["params"]]
    seeds = args.seeds if args.model != "markov" else [0]
    for params in grid:
        for seed in seeds if with_test else seeds[:1]:
            record = run_one(args.model, params, seed, split, data, with_test, out.parent)
            record["stage"] = args.command
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")


def command_summary(args: argparse.Namespace) -> None:
    """Markdown tables of the final runs, and paired bootstraps of SASRec vs Markov on test."""
    out = Path(args.out)
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    finals = [r for r in records if r.get("stage") == "final"]
    print(
        "| model | protocol | params | seed | best epoch | s/epoch | valid N@10 | valid R@10 "
        "| test N@10 | test R@10 | cold R@20 | warm R@20 |"
    )
    print("|" + "---|" * 12)
    for r in finals:
        test = r["test_all"]
        cold = r.get("test_cold", {}).get("recall@20", float("nan"))
        warm = r.get("test_warm", {}).get("recall@20", float("nan"))
        print(
            f"| {r['model']} | {r['protocol']} | {_slug(r['params'])} | {r['seed']} "
            f"| {r.get('best_epoch', '')} | {r.get('seconds_per_epoch', '')} "
            f"| {r['valid']['ndcg@10']:.4f} | {r['valid']['recall@10']:.4f} "
            f"| {test['ndcg@10']:.4f} | {test['recall@10']:.4f} | {cold:.4f} | {warm:.4f} |"
        )
    _bootstrap_vs_markov(finals, out.parent)


def _bootstrap_vs_markov(finals: list[dict[str, Any]], folder: Path) -> None:
    """Seed-averaged per-case NDCG@10 of each neural model minus Markov's, on W test."""
    from shopaug.evaluate import rank_metrics

    def per_case(runs: list[dict[str, Any]]) -> np.ndarray:
        ndcg = [rank_metrics(np.load(folder / r["ranks_file"]), (10,))["ndcg@10"] for r in runs]
        return np.mean(ndcg, axis=0)

    w_runs = [r for r in finals if r["protocol"] == "W"]
    markov = [r for r in w_runs if r["model"] == "markov"]
    if not markov:
        return
    base = per_case(markov[-1:])
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in w_runs:
        if r["model"] != "markov":
            groups.setdefault(f"{r['model']} {_slug(r['params'])}", []).append(r)
    for name, runs in groups.items():
        b = paired_bootstrap(per_case(runs), base, n_resamples=1000, seed=0)
        print(
            f"{name} (mean of {len(runs)} seeds) - markov, test NDCG@10: {b.mean_diff:+.4f} "
            f"[{b.ci_low:+.4f}, {b.ci_high:+.4f}] p={b.p_value:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["grid", "final", "summary"])
    parser.add_argument("--model", choices=["sasrec", "content", "markov"], default="sasrec")
    parser.add_argument("--protocol", choices=["W", "C"], default="W")
    parser.add_argument("--params", default="{}", help="JSON hyper-parameters of one run")
    parser.add_argument("--grid", default=None, help="JSON list of hyper-parameter dicts")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/tune/results.jsonl")
    parser.add_argument("--run-dir", type=Path, default=Path("/tmp/sci_run_nn"))
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache")
    args = parser.parse_args()
    if args.command == "summary":
        command_summary(args)
    else:
        command_runs(args)


if __name__ == "__main__":
    main()
