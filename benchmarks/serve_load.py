"""Load benchmark of the HTTP service: p50/p99 latency and requests/s per endpoint and concurrency.

    .venv/bin/shopaug train ../shared/data/amazon-scientific --model markov --out runs/serve/sci
    .venv/bin/python benchmarks/serve_load.py runs/serve/sci --workers 2 --users 8,32 --seconds 20

Copies the run folder (so POST /events does not grow the real log), starts ``shopaug serve`` with
``--workers`` uvicorn processes on a free loopback port, warms every endpoint, then drives each
endpoint in turn with locust (headless, FastHttpUser, no think time) at each concurrency and prints
the figures locust measured on the client side. The load generator runs on the same machine as the
service, so it takes CPU from it: on a small shared machine the figures are a lower bound.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from shopaug.serve.bundle import RunLayout

ENDPOINTS = ("recommend", "recommend-unknown", "session", "similar", "search", "events")
LOCUSTFILE = Path(__file__).with_name("serve_locustfile.py")
API_KEY = "bench-key"


def make_plan(run_dir: Path, path: Path, seed: int = 0, n_queries: int = 500) -> Path:
    """Known users, item ids and distinct two-word title queries for the simulated users to draw
    from; ``n_queries`` 0 takes every distinct pair of adjacent title words, so that nearly every
    search request is a query the service has not encoded yet."""
    version = RunLayout(run_dir).version_dir(RunLayout(run_dir).current())
    items = pd.read_parquet(version / "items.parquet")
    events = pd.read_parquet(version / "events.parquet", columns=["user_id"])
    pairs = {}
    for title in items["title"].dropna().astype(str):
        words = [w.lower() for w in title.split() if w.isalpha() and len(w) > 2]
        pairs.update(dict.fromkeys(" ".join(words[i : i + 2]) for i in range(len(words) - 1)))
    rng = np.random.default_rng(seed)
    distinct = list(pairs)
    take = len(distinct) if n_queries == 0 else min(n_queries, len(distinct))
    queries = [distinct[i] for i in rng.permutation(len(distinct))[:take]]
    plan = {
        "users": events["user_id"]
        .drop_duplicates()
        .sample(2000, replace=True, random_state=seed)
        .astype(str)
        .tolist(),
        "items": items["item_id"].astype(str).tolist(),
        "queries": queries,
        "api_key": API_KEY,
    }
    path.write_text(json.dumps(plan))
    return path


def start_service(run_dir: Path, workers: int, port: int) -> subprocess.Popen:
    env = {**os.environ, "SHOPAUG_API_KEY": API_KEY, "HF_HUB_OFFLINE": "1"}
    command = [str(Path(sys.executable).with_name("shopaug")), "serve", str(run_dir)]
    command += ["--workers", str(workers), "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise TimeoutError("the service did not start in 180 s")


def warm_up(url: str, plan: dict, rounds: int = 50) -> None:
    """Load lazily built parts (the query encoder) in every worker before measuring."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(rounds):
            client.get(f"/recommend/{plan['users'][i]}")
            client.get(f"/similar/{plan['items'][i]}")
            client.get("/search", params={"q": plan["queries"][i % len(plan["queries"])]})


def run_locust(url: str, plan: Path, endpoint: str, users: int, seconds: int, out: Path) -> dict:
    prefix = out / f"{endpoint}-{users}"
    env = {**os.environ, "SHOPAUG_BENCH_PLAN": str(plan), "SHOPAUG_BENCH_ENDPOINT": endpoint}
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", url]
    command += ["--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
    subprocess.run(command, env=env, check=False, capture_output=True)
    with open(f"{prefix}_stats.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] != "Aggregated")
    return {
        "endpoint": row["Name"],
        "users": users,
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "p50_ms": float(row["50%"]),
        "p99_ms": float(row["99%"]),
        "rps": float(row["Requests/s"]),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="Service run folder from `shopaug train`.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", default="8,32", help="Comma-separated concurrencies.")
    parser.add_argument("--seconds", type=int, default=20, help="Duration of each step.")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument(
        "--queries",
        type=int,
        default=500,
        help="Distinct search queries to draw from (0: every adjacent pair of title words; "
        "then nearly every request encodes a new query).",
    )
    parser.add_argument(
        "--search-mode", choices=["bm25", "dense", "hybrid"], help="Serve /search in this mode."
    )
    args = parser.parse_args()
    console = Console()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        run_dir = tmp_dir / "run"
        shutil.copytree(args.run_dir, run_dir)
        if args.search_mode:
            (run_dir / "serve.json").write_text(json.dumps({"search_mode": args.search_mode}))
        plan_path = make_plan(run_dir, tmp_dir / "plan.json", n_queries=args.queries)
        console.print(f"{len(json.loads(plan_path.read_text())['queries']):,} distinct queries")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = start_service(run_dir, args.workers, port)
        try:
            warm_up(url, json.loads(plan_path.read_text()))
            for endpoint in args.endpoints.split(","):
                for users in (int(u) for u in args.users.split(",")):
                    row = run_locust(url, plan_path, endpoint, users, args.seconds, tmp_dir)
                    console.print(row)
                    rows.append(row)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    mode = f", search mode {args.search_mode}" if args.search_mode else ""
    table = Table(
        title=f"shopaug serve, {args.workers} workers{mode}, loopback, locust closed loop"
    )
    for column in ("endpoint", "users", "requests", "failures", "p50 ms", "p99 ms", "req/s"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for r in rows:
        table.add_row(
            r["endpoint"],
            str(r["users"]),
            f"{r['requests']:,}",
            str(r["failures"]),
            f"{r['p50_ms']:.0f}",
            f"{r['p99_ms']:.0f}",
            f"{r['rps']:.0f}",
        )
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
