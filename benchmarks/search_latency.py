"""Query latency of product search on a large generated catalog (default 50,000 items).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/search_latency.py --items 50000 --queries 1000
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/search_latency.py --encoded-items 2000  # busy CPU

Builds a demo shop of ``--items`` items, indexes it (the catalog's vectors come from the
embedding cache after the first run), saves the engine and loads it again with an encoder whose
cache is empty, so that every timed query is encoded by the model, as a new query in a live shop
would be. Queries are the shop's own logged queries plus template queries from item fields, all
distinct. Each query is timed end to end (``engine.search``: encoding, BM25 over four fields,
FAISS, fusion, highlighting). Prints median, p90, p99 per mode. The machine is shared with other
jobs, so quote medians and say what else was running. ``--encoded-items N`` encodes only N items
and gives the others noisy copies of their vectors: a build-time shortcut for a busy CPU (50,000
items take well over an hour there) that leaves every timed step real.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from shopaug.data.demo_shop import DemoShop, DemoShopConfig, generate_demo_shop
from shopaug.encode import TextEncoder
from shopaug.search import SearchConfig, SearchEngine
from shopaug.search.base import TEXT_FIELDS
from shopaug.search.synthetic import TemplateQueries


def query_set(shop: DemoShop, n: int, seed: int) -> list[str]:
    """``n`` distinct queries: logged ones first, then template queries from item fields."""
    logged = list(dict.fromkeys(shop.queries["query"].str.lower()))
    extra = TemplateQueries(seed=seed).generate(shop.items)["query"].tolist()
    pool = list(dict.fromkeys(logged + extra))
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.permutation(len(pool))[:n]]


def item_vectors(shop: DemoShop, encoder: TextEncoder, encoded: int | None) -> np.ndarray | None:
    """None (the engine encodes every item), or real vectors for the first ``encoded`` items
    with noisy copies of them for the rest, renormalised: FAISS search costs the same for any
    vectors of this shape, and the copies keep the real vectors' clustering."""
    if encoded is None or encoded >= len(shop.items):
        return None
    texts = shop.items.head(encoded).reindex(columns=list(TEXT_FIELDS)).fillna("").astype(str)
    real = encoder.encode([". ".join(p for p in row if p) for row in texts.to_numpy()], True)
    rng = np.random.default_rng(0)
    copies = real[rng.integers(0, encoded, len(shop.items) - encoded)]
    copies = copies + rng.normal(0, 0.05, copies.shape).astype(np.float32)
    vectors = np.concatenate([real, copies])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=3_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--modes", default="hybrid,bm25,dense")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (shared machine)")
    parser.add_argument("--encoder", default=None, help="local sentence-transformers folder")
    parser.add_argument(
        "--query-backend",
        default="auto",
        choices=["auto", "onnx", "torch"],
        help="query encoding runtime (SearchConfig.query_backend)",
    )
    parser.add_argument(
        "--encoded-items",
        type=int,
        default=None,
        help="encode only this many items and give the rest a noisy copy of their vectors "
        "(build-time shortcut on a busy CPU; query encoding, BM25 and FAISS are unchanged)",
    )
    args = parser.parse_args()

    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    started = time.perf_counter()
    shop = generate_demo_shop(DemoShopConfig(n_items=args.items, n_users=args.users, seed=0))
    print(f"demo shop: {len(shop.items):,} items in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    encoder = TextEncoder(args.encoder)
    engine = SearchEngine.build(
        shop.items,
        SearchConfig(encoder=args.encoder, query_backend=args.query_backend),
        encoder,
        progress=True,
        item_vectors=item_vectors(shop, encoder, args.encoded_items),
    )
    kind = engine.dense.kind if engine.dense else "-"
    print(f"index built in {time.perf_counter() - started:.1f} s (dense index: {kind})")
    queries = query_set(shop, args.queries, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        engine.save(Path(tmp) / "index")
        for mode in args.modes.split(","):
            # a freshly loaded engine per mode: its in-memory query cache is empty, so every
            # timed query (all distinct) is encoded by the model
            engine = SearchEngine.load(Path(tmp) / "index", encoder=encoder)
            engine.search("warm up the model", k=10, mode=mode)  # type: ignore[arg-type]
            if mode != "bm25":
                print(f"query encoding on {engine.query_encoder.runtime}")
            wall, cpu = [], []
            for query in queries:
                begin, begin_cpu = time.perf_counter(), time.process_time()
                engine.search(query, k=10, mode=mode)  # type: ignore[arg-type]
                wall.append((time.perf_counter() - begin) * 1000)
                cpu.append((time.process_time() - begin_cpu) * 1000)
            report(mode, wall, cpu)


def report(mode: str, wall: list[float], cpu: list[float]) -> None:
    """Wall-clock latency, and CPU time per query: on a machine whose cores other jobs share,
    the CPU time is what the query costs, the wall time adds the waiting for a core."""
    for name, values in (("wall", wall), ("cpu", cpu)):
        p90, p99 = np.quantile(values, [0.9, 0.99])
        print(
            f"{mode:>6} {name:>4}: {len(values)} queries, median {statistics.median(values):.2f} "
            f"ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms"
        )


if __name__ == "__main__":
    main()
