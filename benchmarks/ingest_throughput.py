"""Ingest throughput: rows per second for a generated interactions CSV.

    .venv/bin/python benchmarks/ingest_throughput.py --rows 1000000 --repeats 3

Writes a catalog and an events CSV (with a few broken rows) to a temporary folder, ingests them
``--repeats`` times and prints the median wall time and rows/s. Numbers depend on the machine; quote
medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shopaug.data.ingest import IngestSpec, ingest


def write_files(folder: Path, n_rows: int, n_items: int, n_users: int, seed: int = 0) -> IngestSpec:
    rng = np.random.default_rng(seed)
    items = pd.DataFrame(
        {
            "item_id": [f"I{i}" for i in range(n_items)],
            "title": [f"Product {i} &amp; more" for i in range(n_items)],
            "price": np.round(rng.lognormal(3, 1, n_items), 2),
        }
    )
    items.to_csv(folder / "items.csv", index=False)
    start = np.datetime64("2026-01-01T00:00:00")
    events = pd.DataFrame(
        {
            "user_id": np.char.add("U", rng.integers(0, n_users, n_rows).astype(str)),
            "item_id": np.char.add("I", rng.integers(0, n_items, n_rows).astype(str)),
            "event": rng.choice(["view", "cart", "purchase"], n_rows, p=[0.8, 0.15, 0.05]),
            "timestamp": start + rng.integers(0, 90 * 86400, n_rows).astype("timedelta64[s]"),
        }
    )
    broken = rng.choice(n_rows, size=max(1, n_rows // 100_000), replace=False)
    events.loc[broken, "item_id"] = "I-unknown"
    events.to_csv(folder / "events.csv", index=False)
    return IngestSpec(items=folder / "items.csv", interactions=folder / "events.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = write_files(folder, args.rows, args.items, args.users)
        size_mb = (folder / "events.csv").stat().st_size / 1e6
        times = []
        for i in range(args.repeats):
            started = time.perf_counter()
            report = ingest(spec, folder / f"run{i}")
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        t = report.table("interactions")
        print(f"events file: {args.rows:,} rows, {size_mb:.0f} MB; catalog {args.items:,} items")
        print(f"kept {t.kept:,}, rejected {t.rejected:,}, users {report.n_users:,}")
        print(f"ingest wall times (s): {', '.join(f'{x:.2f}' for x in times)}")
        print(f"median {median:.2f} s -> {(args.rows + args.items) / median:,.0f} rows/s")


if __name__ == "__main__":
    main()
