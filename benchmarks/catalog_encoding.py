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
content model read. Retrieval quality on real queries is measured separately with
``shopaug bench search --item-backend ...``. Run it on an idle machine: the figures are for the
threads given (``--threads``, default all cores).
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

from shopaug.encode import TextEncoder

DEFAULT_SETTINGS = ("torch:-", "onnx:-", "onnx-int8:-", "onnx-int8:128", "onnx-int8:64")


def catalog_texts(args: argparse.Namespace) -> list[str]:
    if args.data is not None:
        from shopaug.workflow import load_dataset

        work = Path(tempfile.mkdtemp(prefix="encoding-data-"))
        return load_dataset(args.data, None, work, None).item_texts()
    from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop
    from shopaug.search.base import TEXT_FIELDS

    shop = generate_demo_shop(DemoShopConfig(n_items=args.demo_items, n_users=200, seed=0))
    fields = shop.items.reindex(columns=list(TEXT_FIELDS)).fillna("").astype(str).to_numpy()
    return [". ".join(part for part in row if part) for row in fields]


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
            encoder.encode(texts[:8])  # load the model (and export the graph) untimed
            started = time.perf_counter()
            vectors = encoder.encode(texts[8:])
            seconds.append(time.perf_counter() - started)
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
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)  # ONNX Runtime follows torch's thread count
    texts = catalog_texts(args)
    print(f"{len(texts):,} item texts, {args.threads} thread(s)")
    rows, reference = [], None
    for setting in args.settings:
        row = time_setting(texts, setting, args.repeats, args.batch_size)
        vectors = row.pop("vectors")
        if setting == "torch:-":
            reference = vectors
        if reference is not None and setting != "torch:-":
            row.update(agreement(vectors, reference))
        rows.append(row)
        extra = {k: round(v, 4) for k, v in row.items() if k.startswith(("cos", "neigh"))}
        print(f"{setting:>14}: {row['items_per_s']:8.1f} items/s {extra}", flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        summary = {"items": len(texts), "threads": args.threads, "results": rows}
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
