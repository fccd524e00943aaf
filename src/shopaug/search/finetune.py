"""Fine-tuning the bi-encoder on (query, item) pairs with in-batch and mined hard negatives.

The loss is sentence-transformers' ``MultipleNegativesRankingLoss``: for each query in a batch,
its item is the positive and every other item in the batch (and every mined negative) is a
negative. In-batch negatives are mostly easy (a dog collar against a serum); mined hard
negatives are what teaches the model the distinctions that matter, e.g. a dog collar against
a cat collar of the same brand. They are mined with the search engine itself: the top results
for the query that are not one of the query's known items. A batch never holds the same item
twice, or that item would be a false negative for its own other query.

The loop is a plain PyTorch loop over the library's model and loss rather than
``SentenceTransformerTrainer``, which would add the ``datasets`` package (and its pins) to the
install for nothing the loop needs. The result is a normal sentence-transformers folder:
``SearchConfig(encoder=<folder>)`` or ``TextEncoder(model=<folder>)`` loads it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shopaug.encode import default_model_path
from shopaug.progress import StageCallback
from shopaug.search.base import TEXT_FIELDS
from shopaug.search.engine import Mode, SearchEngine


class FineTuneConfig(BaseModel):
    """Training knobs; the defaults are sized for a short CPU run (one epoch, small batches)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str | None = Field(None, description="Model to start from (default: packaged MiniLM).")
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=2)
    learning_rate: float = Field(3e-5, gt=0)
    warmup_share: float = Field(0.1, ge=0, lt=1)
    max_pairs: int | None = Field(None, ge=1, description="Sample at most this many pairs.")
    keep_repeats: bool = Field(
        False,
        description="Train on a repeated (query, item) pair as often as it occurs: in a query log "
        "the repeats are click counts, so the pairs many shoppers chose weigh more.",
    )
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps.")
    max_seq_length: int = Field(64, ge=8, description="Item text tokens kept (titles first).")
    hard_negatives: bool = True
    mine_depth: int = Field(10, ge=1, description="Mined negative: first non-positive in top N.")
    mine_mode: Mode = "bm25"
    threads: int = Field(1, ge=1, description="torch threads (the machine is shared).")
    seed: int = 0


def training_triples(
    pairs: pd.DataFrame,
    engine: SearchEngine,
    config: FineTuneConfig,
    on_stage: StageCallback | None = None,
) -> pd.DataFrame:
    """``query, positive, negative`` texts (negative empty if none was mined).

    ``pairs`` has ``query, item_id``; every item must be in ``engine`` (the texts come from it).
    """
    missing = sorted(set(pairs["item_id"].astype(str)) - set(engine.table.slot_of))
    if missing:
        raise ValueError(f"pairs: item_id(s) not in the catalog: {missing[:5]}")
    pairs = pairs[["query", "item_id"]].astype(str)
    if not config.keep_repeats:
        pairs = pairs.drop_duplicates()
    pairs = pairs.reset_index(drop=True)
    if config.max_pairs is not None and len(pairs) > config.max_pairs:
        pairs = pairs.sample(config.max_pairs, random_state=config.seed).reset_index(drop=True)
    texts = dict(
        zip(
            engine.table.frame["item_id"],
            engine.table.texts(np.arange(engine.table.n_slots), TEXT_FIELDS),
            strict=True,
        )
    )
    live_texts = {i: texts[i] for i in engine.table.slot_of}
    negatives = [""] * len(pairs)
    if config.hard_negatives:
        positives = pairs.groupby("query")["item_id"].agg(set).to_dict()
        queries = list(positives)
        for n, query in enumerate(queries):
            ranked = engine.rank(query, config.mine_depth, mode=config.mine_mode)
            found = [i for i in engine.item_ids(ranked) if i not in positives[query]]
            positives[query] = live_texts[found[0]] if found else ""
            if on_stage is not None and n % 200 == 0:
                on_stage("mining hard negatives", n / max(len(queries), 1))
        negatives = [positives[q] for q in pairs["query"]]
    return pd.DataFrame(
        {
            "query": pairs["query"],
            "positive": [live_texts[i] for i in pairs["item_id"]],
            "negative": negatives,
            "item_id": pairs["item_id"],
        }
    )


def batches_without_repeats(items: list[str], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled row batches in which no item appears twice (a repeat waits for a later batch).

    Rows left at the end that are all copies of one item cannot form a batch (the in-batch loss
    needs two different items) and are left out."""
    order = np.random.default_rng(seed).permutation(len(items)).tolist()
    out: list[list[int]] = []
    while order:
        batch, seen, rest = [], set(), []
        for row in order:
            if len(batch) < batch_size and items[row] not in seen:
                batch.append(row)
                seen.add(items[row])
            else:
                rest.append(row)
        out.append(batch)
        order = rest
    return [b for b in out if len(b) >= 2]


def fine_tune(
    triples: pd.DataFrame,
    out_dir: str | Path,
    config: FineTuneConfig | None = None,
    on_stage: StageCallback | None = None,
) -> Path:
    """Train on ``triples`` (:func:`training_triples`) and save the model to ``out_dir``."""
    config = config or FineTuneConfig()
    if len(triples) < 2:
        raise ValueError(f"fine-tuning needs at least 2 training pairs, got {len(triples)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    base = config.base or str(default_model_path())
    model = SentenceTransformer(base, device="cpu", local_files_only=True)
    model.max_seq_length = config.max_seq_length
    loss = MultipleNegativesRankingLoss(model)
    plan = [
        batch
        for epoch in range(config.epochs)
        for batch in batches_without_repeats(
            triples["item_id"].tolist(), config.batch_size, config.seed + epoch
        )
    ][: config.max_steps]
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    warmup = max(1, int(config.warmup_share * len(plan)))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (len(plan) - step) / len(plan)))
    )
    model.train()
    for step, rows in enumerate(plan):
        batch = triples.iloc[rows]
        columns = [batch["query"], batch["positive"]]
        if config.hard_negatives and (batch["negative"] != "").all():
            columns.append(batch["negative"])
        features = [_features(model, column.tolist()) for column in columns]
        value = loss(features, labels=None)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        schedule.step()
        if on_stage is not None:
            on_stage(f"fine-tuning, loss {value.item():.3f}", (step + 1) / len(plan))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save(str(out))
    # The encoder's embedding cache keys a model by its config files and weight sizes, which a
    # fine-tune does not change; this record (hashed with them) makes every run a new model.
    record = {
        "config": config.model_dump(mode="json"),
        "triples": len(triples),
        "steps": len(plan),
        "trained_at": time.time(),
    }
    (out / "shopaug_finetune.json").write_text(json.dumps(record, indent=2))
    return out


def _features(model: Any, texts: list[str]) -> dict:
    """Tokenised ``texts`` as the loss expects (``preprocess`` in sentence-transformers 6)."""
    prepare = getattr(model, "preprocess", None) or model.tokenize
    return prepare(texts)
