"""Augmentation throughput: samples per second per strategy, and text-encoder items per second.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/augment_throughput.py --copies 20 --repeats 5
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/augment_throughput.py --encode 2000

Strategies run on the protocol-W training rows of Amazon Scientific (``--data``) with ``--copies``
samples per real row, after the neighbour tables are built (their one-off cost is printed
separately). ``--encode N`` encodes the first N item texts with an empty cache in a temporary
folder, so nothing is served from the embedding cache. Quote medians; the machine is shared.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from shopaug.augment import STRATEGIES, AugmentContext, make_strategy
from shopaug.encode import TextEncoder
from shopaug.workflow import DataSetup, load_dataset, prepare_training

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "amazon-scientific"


def strategy_throughput(data: Path, copies: int, repeats: int) -> None:
    config = DataSetup(data=data)
    _, train = prepare_training(config)
    assert train.items is not None
    context = AugmentContext(train.sequences, train.n_items, train.items.embeddings)
    started = time.perf_counter()
    context.prepare()
    print(
        f"neighbour tables (co-occurrence + text, FAISS exact): {time.perf_counter() - started:.2f} s"
    )
    print(f"{'strategy':<16}{'samples':>10}{'median s':>10}{'samples/s':>14}")
    # LLM strategies are timed in tokens per second by benchmarks/llm_throughput.py instead.
    for name in (n for n in STRATEGIES if not n.startswith("llm-")):
        params = {"copies": copies} if name != "cold-neighbours" else {"max_events": 5}
        strategy = make_strategy(name, **params)
        times, n = [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            n = len(strategy.generate(context))
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        print(f"{name:<16}{n:>10,}{median:>10.3f}{n / median:>14,.0f}")


def encoder_throughput(data: Path, n: int) -> None:
    texts = load_dataset(data).item_texts()[:n]
    with tempfile.TemporaryDirectory() as cache:
        encoder = TextEncoder(cache_dir=Path(cache))
        encoder.encode(texts[:8])  # load the model outside the timing
        t0 = time.perf_counter()
        encoder.encode(texts[8:])
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        encoder.encode(texts)
        cached = time.perf_counter() - t1
    print(
        f"encoded {len(texts) - 8} texts in {seconds:.1f} s: {(len(texts) - 8) / seconds:,.0f} items/s"
    )
    print(f"second pass (all from cache): {cached:.2f} s, {encoder.misses} misses in total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--encode", type=int, default=0, help="also time encoding N texts")
    args = parser.parse_args()
    strategy_throughput(args.data, args.copies, args.repeats)
    if args.encode:
        encoder_throughput(args.data, args.encode)


if __name__ == "__main__":
    main()
