"""Fine-tuning the bi-encoder on (query, item) pairs with in-batch and mined hard negatives.

The loss is sentence-transformers' ``MultipleNegativesRankingLoss``: for each query in a batch,
its item is the positive and every other item in the batch (and every mined negative) is a
negative. In-batch negatives are mostly easy (a dog collar against a serum); mined hard
negatives are what teaches the model the distinctions that matter, e.g. a dog collar against
a cat collar of the same brand. They are mined with the search engine itself: the top results
for the query that are not one of the query's known items.

False negatives are what makes synthetic-query training hurt on real queries. When a catalog's
category field is empty, half the template queries are a brand alone, shared by dozens of items,
and with a plain in-batch loss each of those items is a negative of the others: the model learns
to push apart products that answer the same query. So:

- a query naming more than ``max_items_per_query`` items is generic (a brand or a category on its
  own) and is dropped;
- a batch never holds the same item or the same query twice;
- any in-batch or mined candidate that is a known positive of a query (another item the same
  query names) is masked out of that query's softmax: the loss is multi-positive, not one-hot.

Which step to ship is chosen on validation, not assumed: given a ``score`` (a validation metric
of a saved model folder; in the benchmark, dense nDCG@10 on queries of held-out items that no
training query names), the run is scored at ``checkpoints`` evenly spaced steps, stops early
after ``patience`` checkpoints without a gain, and saves the best checkpoint's weights. The
curve (step, epoch, mean loss, validation score) is written into the model folder's record.

The loop is a plain PyTorch loop over the library's model and loss rather than
``SentenceTransformerTrainer``, which would add the ``datasets`` package (and its pins) to the
install for nothing the loop needs. The result is a normal sentence-transformers folder:
``SearchConfig(encoder=<folder>)`` or ``TextEncoder(model=<folder>)`` loads it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shopaug.encode import default_model_path
from shopaug.progress import StageCallback
from shopaug.search.base import TEXT_FIELDS
from shopaug.search.engine import Mode, SearchEngine

if TYPE_CHECKING:
    import torch


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
    max_items_per_query: int | None = Field(
        5,
        ge=1,
        description="A query naming more items is generic (a brand or category alone) and is "
        "dropped (None: keep every query).",
    )
    scale: float = Field(20.0, gt=0, description="Cosine similarity scale of the softmax.")
    max_seq_length: int = Field(64, ge=8, description="Item text tokens kept (titles first).")
    hard_negatives: bool = True
    mine_depth: int = Field(10, ge=1, description="Mined negative: first non-positive in top N.")
    mine_mode: Mode = "bm25"
    threads: int = Field(1, ge=1, description="torch threads (the machine is shared).")
    checkpoints: int = Field(
        2,
        ge=1,
        description="Evenly spaced steps scored on validation when a scorer is given; the best "
        "is saved. Each costs one encoding of the scored items.",
    )
    patience: int | None = Field(
        2, ge=1, description="Stop after this many checkpoints without a gain (None: never)."
    )
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
    pairs, generic = without_generic_queries(pairs, config.max_items_per_query)
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
    negative_of = dict.fromkeys(pairs["query"], "")
    if config.hard_negatives:
        positives = pairs.groupby("query")["item_id"].agg(set).to_dict()
        for n, query in enumerate(negative_of):
            ranked = engine.rank(query, config.mine_depth, mode=config.mine_mode)
            found = [i for i in engine.item_ids(ranked) if i not in positives[query]]
            negative_of[query] = found[0] if found else ""
            if on_stage is not None and n % 200 == 0:
                on_stage("mining hard negatives", n / max(len(negative_of), 1))
    negative_ids = [negative_of[q] for q in pairs["query"]]
    triples = pd.DataFrame(
        {
            "query": pairs["query"],
            "positive": [live_texts[i] for i in pairs["item_id"]],
            "negative": [live_texts[i] if i else "" for i in negative_ids],
            "item_id": pairs["item_id"],
            "negative_id": negative_ids,
        }
    )
    triples.attrs["generic_queries_dropped"] = generic
    return triples


def without_generic_queries(pairs: pd.DataFrame, limit: int | None) -> tuple[pd.DataFrame, int]:
    """``pairs`` without the queries that name more than ``limit`` distinct items, and how many
    queries were dropped (module docstring: such queries teach the model false negatives)."""
    if limit is None:
        return pairs, 0
    items_per_query = pairs.groupby("query")["item_id"].transform("nunique")
    generic = items_per_query > limit
    return pairs[~generic], int(pairs.loc[generic, "query"].nunique())


def batches_without_repeats(
    items: list[str], batch_size: int, seed: int, queries: list[str] | None = None
) -> list[list[int]]:
    """Shuffled row batches in which no item (and, given ``queries``, no query) appears twice;
    a repeat waits for a later batch.

    Rows left at the end that are all copies of one item cannot form a batch (the in-batch loss
    needs two different items) and are left out."""
    keys = [(item,) for item in items] if queries is None else list(zip(items, queries))
    order = np.random.default_rng(seed).permutation(len(items)).tolist()
    out: list[list[int]] = []
    while order:
        batch, rest = [], []
        seen: list[set[str]] = [set() for _ in keys[0]] if keys else []
        for row in order:
            key = keys[row]
            if len(batch) < batch_size and not any(k in s for k, s in zip(key, seen)):
                batch.append(row)
                for k, s in zip(key, seen):
                    s.add(k)
            else:
                rest.append(row)
        out.append(batch)
        order = rest
    return [b for b in out if len(b) >= 2]


def known_positive_mask(batch: pd.DataFrame, positives: dict[str, set[str]]) -> np.ndarray:
    """``mask[i, j]``: candidate ``j`` (the batch's positives, then its mined negatives) is a
    known positive of query ``i`` other than its own, so it must not count as a negative."""
    candidates = batch["item_id"].tolist()
    if "negative_id" in batch and (batch["negative_id"] != "").all():
        candidates += batch["negative_id"].tolist()
    mask = np.array(
        [[item in positives[query] for item in candidates] for query in batch["query"]],
        dtype=bool,
    )
    mask[np.arange(len(batch)), np.arange(len(batch))] = False
    return mask


def multi_positive_loss(
    model: Any, features: list[dict], mask: np.ndarray, scale: float
) -> torch.Tensor:
    """In-batch softmax cross-entropy (as sentence-transformers' MultipleNegativesRankingLoss)
    with the other known positives of each query masked out of its candidates."""
    import torch
    from torch.nn import functional

    embedded = [model(f)["sentence_embedding"] for f in features]
    queries = functional.normalize(embedded[0], dim=-1)
    candidates = functional.normalize(torch.cat(embedded[1:]), dim=-1)
    scores = scale * queries @ candidates.T
    scores = scores.masked_fill(torch.as_tensor(mask), float("-inf"))
    return functional.cross_entropy(scores, torch.arange(len(queries)))


#: Scores a saved model folder on validation; higher is better.
CheckpointScore = Callable[[Path], float]


def fine_tune(
    triples: pd.DataFrame,
    out_dir: str | Path,
    config: FineTuneConfig | None = None,
    on_stage: StageCallback | None = None,
    score: CheckpointScore | None = None,
) -> Path:
    """Train on ``triples`` (:func:`training_triples`) and save the model to ``out_dir``: the
    last step's weights, or with ``score`` the best-scoring checkpoint's (module docstring)."""
    config = config or FineTuneConfig()
    if len(triples) < 2:
        raise ValueError(f"fine-tuning needs at least 2 training pairs, got {len(triples)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    base = config.base or str(default_model_path())
    model = SentenceTransformer(base, device="cpu", local_files_only=True)
    model.max_seq_length = config.max_seq_length
    plan = training_plan(triples, config)
    out = Path(out_dir)
    tracker = CheckpointTracker(plan, config, score, out / "checkpoint")
    run = _TrainingRun(model, triples, config, len(plan))
    for step, planned in enumerate(plan):
        loss = run.step(planned.rows)
        if on_stage is not None:
            on_stage(f"fine-tuning, loss {loss:.3f}{tracker.summary()}", (step + 1) / len(plan))
        if tracker.due(step) and tracker.record(step, run) == "stop":
            break
    tracker.restore_best(model)
    record = {
        "config": config.model_dump(mode="json"),
        "triples": len(triples),
        "steps": len(plan),
        **tracker.report(len(run.losses)),
    }
    _save(model, out, record)
    return out


@dataclass(frozen=True)
class Step:
    """One training step: its rows, and how many epochs are done once it is (1.5: half way
    through the second)."""

    rows: list[int]
    epoch: float


def training_plan(triples: pd.DataFrame, config: FineTuneConfig) -> list[Step]:
    """The row batches of every epoch, cut at ``max_steps``."""
    items, queries = triples["item_id"].tolist(), triples["query"].tolist()
    plan = []
    for epoch in range(config.epochs):
        batches = batches_without_repeats(items, config.batch_size, config.seed + epoch, queries)
        plan += [Step(rows, epoch + (i + 1) / len(batches)) for i, rows in enumerate(batches)]
    return plan[: config.max_steps]


class _TrainingRun:
    """The optimiser, schedule and loss of one run; :meth:`step` trains on one batch."""

    def __init__(self, model: Any, triples: pd.DataFrame, config: FineTuneConfig, steps: int):
        import torch

        self.model, self.triples, self.config = model, triples, config
        self.positives = triples.groupby("query")["item_id"].agg(set).to_dict()
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
        warmup = max(1, int(config.warmup_share * steps))
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / steps))
        )
        self.losses: list[float] = []
        model.train()

    def step(self, rows: list[int]) -> float:
        batch = self.triples.iloc[rows]
        columns = [batch["query"], batch["positive"]]
        if self.config.hard_negatives and (batch["negative"] != "").all():
            columns.append(batch["negative"])
        features = [_features(self.model, column.tolist()) for column in columns]
        if len(columns) == 2:
            batch = batch.drop(columns="negative_id", errors="ignore")
        mask = known_positive_mask(batch, self.positives)
        value = multi_positive_loss(self.model, features, mask, self.config.scale)
        self.optimizer.zero_grad()
        value.backward()
        self.optimizer.step()
        self.schedule.step()
        self.losses.append(value.item())
        return self.losses[-1]


class CheckpointTracker:
    """Which steps are scored, the curve so far, and the best weights (kept in memory: a
    MiniLM's state is ~90 MB, cheaper than a folder per checkpoint)."""

    def __init__(
        self,
        plan: list[Step],
        config: FineTuneConfig,
        score: CheckpointScore | None,
        folder: Path,
    ):
        self.config, self.score, self.folder = config, score, folder
        steps = len(plan)
        marks = np.linspace(0, steps, min(config.checkpoints, steps) + 1)[1:]
        self.steps = {round(float(m)) - 1 for m in marks} if score is not None else set()
        self.epochs = [planned.epoch for planned in plan]
        self.curve: list[dict[str, Any]] = []
        self.best_state: dict[str, Any] | None = None
        self.since_best = 0
        self.last_loss_at = 0

    def due(self, step: int) -> bool:
        return step in self.steps

    def record(self, step: int, run: _TrainingRun) -> str:
        """Score the model as it is at ``step``; "stop" when patience has run out."""
        assert self.score is not None
        _save(run.model, self.folder, {"checkpoint_step": step + 1})
        value = float(self.score(self.folder))
        shutil.rmtree(self.folder, ignore_errors=True)
        losses = run.losses[self.last_loss_at :]
        self.last_loss_at = len(run.losses)
        self.curve.append(
            {
                "step": step + 1,
                "epoch": round(self.epochs[step], 3),
                "loss": float(np.mean(losses)),
                "validation": value,
            }
        )
        if self.best is self.curve[-1]:
            self.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
            self.since_best = 0
        else:
            self.since_best += 1
        patience = self.config.patience
        return "stop" if patience is not None and self.since_best >= patience else "go on"

    @property
    def best(self) -> dict[str, Any] | None:
        if not self.curve:
            return None
        return max(self.curve, key=lambda point: point["validation"])  # first of equals

    def summary(self) -> str:
        best = self.best
        return (
            ""
            if best is None
            else f", best validation {best['validation']:.4f} at step {best['step']}"
        )

    def restore_best(self, model: Any) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def report(self, steps_run: int) -> dict[str, Any]:
        best = self.best
        return {
            "steps_run": steps_run,
            "checkpoints": self.curve,
            "best_step": steps_run if best is None else best["step"],
        }


def training_record(folder: str | Path) -> dict[str, Any]:
    """What a fine-tune saved about itself (config, steps run, the validation curve); empty for
    a folder this module did not write."""
    path = Path(folder) / "shopaug_finetune.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _save(model: Any, out: Path, record: dict[str, Any]) -> None:
    """A sentence-transformers folder with the shopaug record.

    The encoder's embedding cache keys a model by its config files and weight sizes, which a
    fine-tune does not change; the record (hashed with them, with a time stamp) makes every
    saved model a new one.
    """
    out.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    model.save(str(out))
    record = {**record, "trained_at": time.time()}
    (out / "shopaug_finetune.json").write_text(json.dumps(record, indent=2))
    model.train(was_training)


def _features(model: Any, texts: list[str]) -> dict:
    """Tokenised ``texts`` as the loss expects (``preprocess`` in sentence-transformers 6)."""
    prepare = getattr(model, "preprocess", None) or model.tokenize
    return prepare(texts)
