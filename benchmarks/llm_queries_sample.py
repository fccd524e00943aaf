"""LLM queries for a seeded random sample of a catalog, as a ``query,item_id,kept`` file.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/llm_queries_sample.py \
        --data ../shared/data/amazon-scientific --items 1100 --blank-field categories \
        --out runs/issue21/sci-sparse-llm-1100.csv

The local model writes queries at seconds per item on this machine (hours for a whole catalog
of thousands), so a measurement that must fit in a session uses a random sample of the items:
unlike a window of the first N rows, a random sample is unrelated to any test set drawn from the
same catalog. The strategy is the product's (``llm-queries`` of ``shopaug augment``, variants
off), run on the whole catalog shuffled with ``limit`` = the sample size, so the round-trip filter
searches the whole (sparse) catalog, not the sample. ``--blank-field`` empties a field first, as
``shopaug bench search --blank-field`` does, so the queries see the sparse catalog they are
measured on. The file goes to ``bench search --synthetic-file`` / ``--expansion-file``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from shopaug.augment.llm_queries import LLMQueries
from shopaug.workflow import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--items", type=int, required=True, help="Sample size.")
    parser.add_argument(
        "--offset",
        type=int,
        default=0,
        help="Shuffled items to skip first: windows of one sample for several processes, which "
        "share the response cache (a later run over the whole sample then costs no calls).",
    )
    parser.add_argument("--blank-field", action="append", default=[])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llm-sample-"))
    items = load_dataset(args.data, None, work, None).items
    catalog = items.assign(**dict.fromkeys(args.blank_field, "")).reset_index(drop=True)
    order = np.random.default_rng(args.seed).permutation(len(catalog))
    shuffled = catalog.iloc[order].reset_index(drop=True)
    strategy = LLMQueries(
        generator="local",
        generator_params={"n_threads": args.threads},
        variants=False,
        offset=args.offset,
        limit=args.items,
    )
    run = strategy.generate(shuffled)
    frame = run.samples.frame
    ids = shuffled["item_id"].astype(str).to_numpy()
    out = pd.DataFrame(
        {"query": frame["query"], "item_id": ids[frame["item"].to_numpy()], "kept": frame["kept"]}
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(run.report())


if __name__ == "__main__":
    main()
