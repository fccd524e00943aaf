"""Catalog encoding speed (items/s) per backend, and what the faster ones cost in vectors.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/catalog_encoding.py \
        --data ../shared/data/amazon-scientific --repeats 3 --out runs/encoding-sci.json
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/catalog_encoding.py --demo-items 50000 \
        --repeats 1 --settings onnx-int8:128 --out runs/encoding-50k.json

Each setting (``backend:max_length``; ``-`` for the model's own limit) encodes the same item
texts (what the search index and the content model encode: title, brand, categories,
description) with an empty embedding cache, ``--repeats`` times; the median wall time gives
items/s. Model loading and ONNX export are done once before timing (a catalog build pays them
once). Against the reference (``torch:-``, sentence-transformers on PyTorch) each setting
reports the cosine of its vectors with the reference vectors (mean, 1st percentile, minimum) and
how many of each item's 10 nearest catalog neighbours stay the same: what retrieval and the
content model read. With ``--queries FILE`` (query, item_id judgments, e.g.
``benchmarks/queries/scientific_handwritten.csv``) each setting's vectors also serve dense
search over the catalog (queries encoded as in production, float ONNX), and its nDCG@10 is
compared with the reference's by a paired bootstrap over the queries. ``--reference-repeats``
times the slow reference fewer times. Run it on an idle machine: the figures are for the threads
given (``--threads``, default all cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shopaug.data.dataset import item_texts
from shopaug.encode import TextEncoder
from shopaug.evaluate.stats import paired_bootstrap

DEFAULT_SETTINGS = ("torch:-", "onnx:-", "onnx-int8:-", "onnx-int8:128", "onnx-int8:64")


def catalog(args: argparse.Namespace) -> pd.DataFrame:
    """The items (item_id and text fields) of ``--data``, or of a generated demo shop."""
    if args.data is not None:
        from shopaug.workflow import load_dataset

        work = Path(tempfile.mkdtemp(prefix="encoding-data-"))
        return load_dataset(args.data, None, work, None).items.reset_index(drop=True)
    from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop

    shop = generate_demo_shop(DemoShopConfig(n_items=args.demo_items, n_users=200, seed=0))
    return shop.items.reset_index(drop=True)


def search_ndcg(items: pd.DataFrame, vectors: np.ndarray, judgments: pd.DataFrame) -> np.ndarray:
    """Per-query nDCG@10 of dense search over ``items`` with these item vectors."""
    from shopaug.search import SearchConfig, SearchEngine
    from shopaug.search.evaluate import score_system

    engine = SearchEngine.build(items, SearchConfig(mode="dense"), item_vectors=vectors)
    return score_system(engine, judgments, "dense", depth=10)["values"]["ndcg@10"]


def parse(setting: str) -> tuple[str, int | None]:
    backend, _, length = setting.partition(":")
    return backend, None if length in ("", "-") else int(length)


def time_setting(texts: list[str], setting: str, repeats: int, batch: int) -> dict:
    """Median seconds to encode ``texts`` with a cold embedding cache, and the vectors."""
    backend, max_length = parse(setting)
    seconds, vectors = [], None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            encoder = TextEncoder(
                batch_size=batch, cache_dir=Path(cache), backend=backend, max_length=max_length
            )
            first = encoder.encode(texts[:8])  # loads the model (and exports a graph) untimed
            started = time.perf_counter()
            rest = encoder.encode(texts[8:])
            seconds.append(time.perf_counter() - started)
            vectors = np.concatenate([first, rest])
    median = statistics.median(seconds)
    return {
        "setting": setting,
        "seconds": seconds,
        "items_per_s": (len(texts) - 8) / median,
        "vectors": vectors,
    }


def agreement(vectors: np.ndarray, reference: np.ndarray, k: int = 10) -> dict[str, float]:
    """Cosines with the reference vectors and overlap of the items' k nearest neighbours."""
    cosine = np.sum(vectors * reference, axis=1)

    def neighbours(matrix: np.ndarray) -> np.ndarray:
        scores = matrix @ matrix.T
        np.fill_diagonal(scores, -np.inf)
        return np.argpartition(-scores, k, axis=1)[:, :k]

    sample = np.random.default_rng(0).permutation(len(vectors))[:5000]
    ours, theirs = neighbours(vectors[sample]), neighbours(reference[sample])
    overlap = [len(set(a) & set(b)) / k for a, b in zip(ours, theirs, strict=True)]
    return {
        "cosine_mean": float(cosine.mean()),
        "cosine_p01": float(np.percentile(cosine, 1)),
        "cosine_min": float(cosine.min()),
        f"neighbours@{k}_kept": float(np.mean(overlap)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="Run folder or Amazon folder.")
    parser.add_argument("--demo-items", type=int, default=4344, help="Demo catalog size.")
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", type=int, default=None)
    parser.add_argument("--queries", type=Path, default=None, help="query,item_id judgments.")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)  # ONNX Runtime follows torch's thread count
    items = catalog(args)
    texts = item_texts(items)
    judgments = None if args.queries is None else pd.read_csv(args.queries, dtype=str)
    print(f"{len(texts):,} item texts, {args.threads} thread(s)")
    rows, reference, reference_ndcg = [], None, None
    for setting in args.settings:
        is_reference = setting == "torch:-"
        repeats = (
            args.reference_repeats if is_reference and args.reference_repeats else args.repeats
        )
        row = time_setting(texts, setting, repeats, args.batch_size)
        vectors = row.pop("vectors")
        if is_reference:
            reference = vectors
        if reference is not None and not is_reference:
            row.update(agreement(vectors, reference))
        if judgments is not None:
            ndcg = search_ndcg(items, vectors, judgments)
            row["search_ndcg@10"] = float(ndcg.mean())
            if is_reference:
                reference_ndcg = ndcg
            elif reference_ndcg is not None:
                diff = paired_bootstrap(ndcg, reference_ndcg)
                row["search_ndcg@10_minus_reference"] = [diff.mean_diff, diff.ci_low, diff.ci_high]
        rows.append(row)
        extra = {k: v for k, v in row.items() if k.startswith(("cos", "neigh", "search"))}
        print(f"{setting:>14}: {row['items_per_s']:8.1f} items/s {extra}", flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        summary = {"items": len(texts), "threads": args.threads, "results": rows}
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
