"""Memory at scale: a 1,000,000-user, 200,000-item demo shop through ingest, crop, pop and ALS.

    HF_HUB_OFFLINE=1 nohup .venv/bin/python benchmarks/scale_memory.py --out /tmp/scale \
        > /tmp/scale.log 2>&1 &

Each stage runs in this one process, one after another, as ``shopaug run`` would; after each the
script prints the stage's wall time, the process's resident memory now and its peak so far
(``getrusage`` ``ru_maxrss``, which covers DuckDB's native allocations too). The peak is what has
to fit into the machine's memory. ``--users``/``--items`` scale it down for a quick check.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

GIB = 1024**3


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def timed(name: str, rows: list[dict[str, Any]], work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = work()
    row = {
        "stage": name,
        "seconds": round(time.perf_counter() - started, 1),
        "rss_gib": round(psutil.Process().memory_info().rss / GIB, 2),
        "peak_rss_gib": round(peak_rss_gib(), 2),
    }
    rows.append(row)
    print(json.dumps(row), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/shopaug-scale"))
    parser.add_argument("--als-iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--format", default="csv", choices=("csv", "parquet", "jsonl"))
    args = parser.parse_args()

    from shopaug.augment import AugmentContext, make_strategy
    from shopaug.data.dataset import Dataset
    from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop
    from shopaug.data.ingest import IngestSpec, ingest
    from shopaug.models import TrainData, make_model

    shutil.rmtree(args.out, ignore_errors=True)
    rows: list[dict[str, Any]] = []
    config = DemoShopConfig(n_users=args.users, n_items=args.items)
    shop = timed("generate shop", rows, lambda: generate_demo_shop(config))
    print(f"events: {len(shop.interactions):,}  queries: {len(shop.queries):,}", flush=True)
    files = timed(
        "write files", rows, lambda: write_demo_shop(shop, args.out / "source", args.format)
    )
    shop = None  # let the generated frames go before ingest
    report = timed("ingest", rows, lambda: ingest(IngestSpec(**files), args.out))
    print(f"ingested users: {report.n_users:,}", flush=True)
    dataset = timed("load dataset", rows, lambda: Dataset.load(args.out))
    sequences = timed("sequences", rows, lambda: dataset.sequences(min_length=2))
    print(f"rows: {len(sequences):,}  events: {sequences.n_events:,}", flush=True)
    context = AugmentContext(sequences, dataset.n_items)
    samples = timed("crop", rows, lambda: make_strategy("crop", copies=1).generate(context))
    print(f"crop samples: {len(samples):,}", flush=True)
    samples = context = None
    train = TrainData(sequences, dataset.n_items, n_users=dataset.n_users)
    timed("popularity fit", rows, lambda: make_model("pop").fit(train))
    als = make_model("als", iterations=args.als_iterations, num_threads=args.threads)
    timed("als fit", rows, lambda: als.fit(train))
    (args.out / "scale_memory.json").write_text(json.dumps(rows, indent=2))
    print(f"peak RSS: {peak_rss_gib():.2f} GiB; total {sum(r['seconds'] for r in rows):.0f} s")


if __name__ == "__main__":
    main()
