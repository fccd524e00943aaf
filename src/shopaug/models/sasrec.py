"""SASRec (Kang & McAuley, 2018): a causal self-attention encoder over the item sequence.

The module holds two layers that the content-aware model reuses unchanged:

- :class:`SequenceNet`, the network: item vectors (a hook), learned positional embeddings, causal
  transformer blocks; the last hidden state of a history is dotted with every item vector.
- :class:`SequentialRecommender`, the estimator: turns weighted sequences into training windows,
  trains with full-softmax cross-entropy (or BCE / sampled softmax), early-stops on validation
  NDCG@10 with full ranking, and saves a portable checkpoint (state dict + parameters).

Subclasses only say how an item becomes a vector (:meth:`SequentialRecommender._make_network`).
Full softmax is the default because on the Amazon benchmarks it beats the paper's one-negative BCE by
a wide margin (RecBole, and "Turning Dross Into Gold Loss", Petrov & Macdonald 2023).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, ValidationInfo, field_validator
from torch import nn

from shopaug.data.sequences import Sequences
from shopaug.data.splits import EvalCases
from shopaug.models.base import EarlyStopping, Recommender, TrainData, ValidationHook
from shopaug.models.params import ModelParams
from shopaug.models.ranking import rank_metrics, rank_targets

logger = logging.getLogger(__name__)
Loss = Literal["ce", "bce", "sampled"]
#: Rows scored at once when ranking the catalog (memory is rows x n_items floats).
SCORE_BATCH = 1024
CHECKPOINT_FORMAT = 1


# ----------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions <= t that are not padding."""

    def __init__(self, hidden: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if hidden % n_heads:
            raise ValueError(f"hidden={hidden} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, length, h = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.n_heads, h // self.n_heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=drop)
        return self.out(y.transpose(1, 2).reshape(b, length, h))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + FFN(LN(x)); padding rows are zeroed after each."""

    def __init__(self, hidden: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attn = CausalSelfAttention(hidden, n_heads, dropout)
        self.norm2 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), allowed))
        x = x + self.drop(self.ffn(self.norm2(x)))
        return x * keep


class SequenceNet(nn.Module):
    """Item vectors -> causal transformer -> hidden state per position.

    Inputs are item indices shifted by one (0 is padding), left-padded, so the last column is the
    most recent item. Positions are counted back from the end of the ``max_len`` window, so a batch
    trimmed to its longest row gives every item the same position embedding as the full window.
    Subclasses override :meth:`item_vectors`.
    """

    def __init__(
        self,
        n_items: int,
        hidden: int,
        n_layers: int,
        n_heads: int,
        max_len: int,
        dropout: float,
        item_bias: bool = False,
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_len = max_len
        self.position = nn.Embedding(max_len, hidden)
        self.input_norm = nn.LayerNorm(hidden)
        self.input_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden, n_heads, dropout) for _ in range(n_layers)
        )
        self.final_norm = nn.LayerNorm(hidden)
        # An output bias per item carries popularity, so the vectors need not (as in BERT4Rec).
        self.item_bias = nn.Parameter(torch.zeros(n_items)) if item_bias else None

    def init_weights(self) -> None:
        """Normal(0, 0.02) for embeddings and linear layers, as RecBole's SASRec (BERT init)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def item_vectors(self) -> torch.Tensor:
        """(n_items, hidden): every catalog item as a vector, used for input and output."""
        raise NotImplementedError

    def logits(
        self, hidden: torch.Tensor, items: torch.Tensor, which: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores of hidden states (n, h) against all items, or against ``which`` (n, k) items."""
        bias = self.output_bias()
        if which is None:
            out = hidden @ items.T
            return out if bias is None else out + bias
        out = torch.einsum("nh,nkh->nk", hidden, items[which])
        return out if bias is None else out + bias[which]

    def output_bias(self) -> torch.Tensor | None:
        """(n_items,) bias added to every score, or None."""
        return self.item_bias

    def encode(self, inputs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(batch, length) shifted item indices -> (batch, length, hidden) hidden states."""
        length = inputs.shape[1]
        table = torch.cat([items.new_zeros(1, items.shape[1]), items])
        positions = torch.arange(self.max_len - length, self.max_len, device=inputs.device)
        keep = (inputs > 0).unsqueeze(-1).to(items.dtype)
        x = self.input_drop(self.input_norm(table[inputs] + self.position(positions))) * keep
        allowed = self._attention_mask(inputs)
        for block in self.blocks:
            x = block(x, allowed, keep)
        return self.final_norm(x)

    @staticmethod
    def _attention_mask(inputs: torch.Tensor) -> torch.Tensor:
        """(batch, 1, L, L) bool: causal and not padding; the diagonal stays open so a padding
        query (whose output is discarded) still has a key and softmax gives no NaN."""
        length = inputs.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=inputs.device).tril()
        allowed = causal & (inputs > 0).unsqueeze(1)
        allowed |= torch.eye(length, dtype=torch.bool, device=inputs.device)
        return allowed.unsqueeze(1)


class IdSequenceNet(SequenceNet):
    """SASRec proper: every item is a free embedding, shared by input and output."""

    def __init__(self, n_items: int, hidden: int, **kw: Any) -> None:
        super().__init__(n_items, hidden, **kw)
        self.item_embedding = nn.Embedding(n_items, hidden)
        self.init_weights()

    def item_vectors(self) -> torch.Tensor:
        return self.item_embedding.weight


# ----------------------------------------------------------------------------------------------
# Training data as fixed-width windows
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    """Training examples: ``inputs[w, c]`` (item + 1, 0 = pad) predicts ``targets[w, c]`` (-1 = none)
    with weight ``weights[w, c]``; rows are left-padded, ``lengths`` counts filled columns, and
    ``rows`` is the sequence row each window was cut from."""

    inputs: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    lengths: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)


def make_windows(seq: Sequences, max_len: int) -> Windows:
    """Cut every row into windows of ``max_len`` (input, next item) pairs, covering every event.

    A row ``s`` gives pairs ``s[p-1] -> s[p]`` for p >= 1. Window 0 holds the last ``max_len``
    pairs, window 1 the ``max_len`` before, and so on, so long histories are not truncated and no
    target is counted twice. Events with weight 0 are dropped first: they are ignored, as if absent.
    """
    weights = seq.event_weights()
    if np.any(weights < 0):
        raise ValueError("event weights must be >= 0")
    if np.any(weights == 0):
        seq = seq.select_events(weights > 0)
        weights = seq.event_weights()
    lengths = seq.lengths
    n_windows = np.where(lengths >= 2, (lengths - 2) // max_len + 1, 0)
    first_window = np.concatenate([[0], np.cumsum(n_windows)[:-1]]).astype(np.int64)
    pos = seq.positions()
    row = seq.row_ids()
    is_target = pos >= 1
    from_end = (lengths[row] - 1 - pos)[is_target]
    window = first_window[row[is_target]] + from_end // max_len
    column = max_len - 1 - from_end % max_len
    total = int(n_windows.sum())
    inputs = np.zeros((total, max_len), dtype=np.int64)
    targets = np.full((total, max_len), -1, dtype=np.int64)
    w = np.zeros((total, max_len), dtype=np.float32)
    event = np.flatnonzero(is_target)
    inputs[window, column] = seq.items[event - 1] + 1
    targets[window, column] = seq.items[event]
    w[window, column] = weights[event]
    filled = max_len - np.argmax(inputs > 0, axis=1)
    rows = np.repeat(np.arange(len(lengths), dtype=np.int64), n_windows)
    return Windows(inputs, targets, w, filled.astype(np.int64), rows)


def history_pairs(inputs: torch.Tensor, at: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, item) for every item at or before each target position of a batch of windows.

    ``row`` indexes the flattened target positions (``hidden[at]``); ``item`` is unshifted. Items
    in earlier windows of a very long history are not included.
    """
    length = inputs.shape[1]
    row_of = torch.cumsum(at.flatten(), 0).view_as(at) - 1
    before = torch.ones(length, length, dtype=torch.bool, device=inputs.device).tril()
    pairs = at[:, :, None] & before[None] & (inputs[:, None, :] > 0)
    b, target_col, input_col = pairs.nonzero(as_tuple=True)
    return row_of[b, target_col], inputs[b, input_col] - 1


def history_matrix(histories: Sequences, max_len: int) -> np.ndarray:
    """(rows, width) left-padded shifted items: the last ``max_len`` items of each history;
    ``width`` is the longest row (at most ``max_len``) so short batches stay short."""
    lengths = np.minimum(histories.lengths, max_len)
    width = max(int(lengths.max(initial=0)), 1)
    out = np.zeros((len(histories), width), dtype=np.int64)
    from_end = np.repeat(histories.indptr[1:], histories.lengths) - np.arange(histories.n_events)
    keep = from_end <= max_len
    out[histories.row_ids()[keep], width - from_end[keep]] = histories.items[keep] + 1
    return out


def length_bucketed_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 32
) -> Iterator[np.ndarray]:
    """Random batches of windows of similar length, in random order.

    Shop sequences are short (median 6 events) but a random batch nearly always holds one long
    window, so padding every batch to its longest row spends most of the transformer's work on
    padding. Windows are shuffled, cut into pools of ``pool`` batches, sorted by length inside a
    pool (ties keep the random order) and cut into batches, whose order is shuffled again.
    """
    order = rng.permutation(len(lengths))
    batches = []
    step = batch_size * pool
    for start in range(0, len(order), step):
        chunk = order[start : start + step]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    for b in rng.permutation(len(batches)):
        yield batches[b]


# ----------------------------------------------------------------------------------------------
# Ranking helpers (the evaluator is a later stage; models keep their own early-stopping metric)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Estimator
# ----------------------------------------------------------------------------------------------


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads and restore the caller's setting afterwards."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class BestState:
    """The best validation score so far, the weights that gave it, and evaluations since."""

    patience: int
    epoch: int = 0
    score: float = -math.inf
    state: dict[str, torch.Tensor] | None = None
    waited: int = 0

    def update(self, epoch: int, score: float, net: nn.Module) -> None:
        if score > self.score:
            self.epoch, self.score, self.waited = epoch, score, 0
            self.state = copy.deepcopy(net.state_dict())
        else:
            self.waited += 1

    @property
    def exhausted(self) -> bool:
        return self.waited >= self.patience


class SequentialParams(ModelParams):
    """SASRec's parameters; the content-aware model adds its own to these."""

    hidden: int = Field(64, ge=1, description="Width of item vectors and hidden states.")
    n_layers: int = Field(2, ge=1, description="Transformer blocks.")
    n_heads: int = Field(2, ge=1, description="Attention heads per block (divide hidden).")
    max_len: int = Field(50, ge=1, description="Most recent items of a history that count.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Input, attention, residual, FFN.")
    lr: float = Field(1e-3, ge=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    batch_size: int = Field(256, ge=1, description="Training windows per step.")
    epochs: int = Field(200, ge=1, description="Most training epochs.")
    patience: int = Field(10, ge=1, description="Evaluations without a better valid NDCG@10.")
    eval_every: int = Field(1, ge=1, description="Epochs between validations.")
    loss: Loss = Field("ce", description="Full softmax, BCE or sampled softmax.")
    n_negatives: int = Field(1, ge=1, description="Uniform negatives of bce / sampled.")
    mask_history: bool = Field(False, description="Keep history items out of the softmax.")
    item_bias: bool = Field(False, description="Learn an output bias per item.")
    seed: int = Field(0, description="Initialisation, dropout and shuffling.")
    num_threads: int | None = Field(
        None, ge=0, description="torch threads during fit (null: leave as is)."
    )
    device: str = Field("cpu", description="torch device, e.g. cpu or cuda.")
    verbose: bool = Field(
        False, description="Log loss and valid NDCG@10 per epoch (logging, level INFO)."
    )

    @field_validator("n_heads")
    @classmethod
    def _heads_divide_hidden(cls, n_heads: int, info: ValidationInfo) -> int:
        hidden = info.data.get("hidden")
        if hidden is not None and hidden % n_heads:
            raise ValueError(f"hidden={hidden} must be divisible by n_heads={n_heads}")
        return n_heads


class SequentialRecommender(Recommender, EarlyStopping):
    """Training, scoring and checkpointing shared by SASRec and the content-aware model.

    Parameters: ``hidden`` (embedding and state width), ``n_layers`` transformer blocks of
    ``n_heads`` heads, ``max_len`` most recent items per history, ``dropout`` (input, attention,
    residual and FFN); AdamW with ``lr`` and ``weight_decay``; ``batch_size`` training windows;
    at most ``epochs`` epochs, validated every ``eval_every`` epochs and stopped after
    ``patience`` evaluations without a better validation NDCG@10. ``loss``: ``"ce"`` full softmax
    over the catalog, ``"bce"`` (the paper's, one positive vs ``n_negatives`` uniform negatives)
    or ``"sampled"`` softmax over ``n_negatives`` uniform negatives. ``mask_history`` keeps each
    position's own history out of its training softmax (off by default: no gain on Scientific).
    ``seed`` fixes initialisation, dropout and shuffling: results are bit-identical for a seed
    with ``num_threads=1`` (with more threads, float sums may differ in the last bits).
    ``num_threads`` sets torch's intra-op threads during fit (None: leave as is).

    Fitted attributes: ``net_`` (the torch module), ``history_`` (loss and validation NDCG@10 per
    epoch), ``best_epoch_``, ``best_score_``, ``epoch_seconds_`` (training time per epoch).

    Subclasses implement :meth:`_network_config` (plain values read from the training data, saved
    in the checkpoint) and :meth:`_make_network` (builds the module from that config); they may
    override :meth:`_loss_item_mask` to keep some items out of the softmax.
    """

    name: ClassVar[str] = "sequential"

    Params: ClassVar[type[ModelParams]] = SequentialParams

    # -- hooks -----------------------------------------------------------------------------------

    def _network_config(self, data: TrainData) -> dict[str, Any]:
        return {"n_items": data.n_items}

    def _make_network(self, config: dict[str, Any]) -> SequenceNet:
        raise NotImplementedError

    def _init_from_data(self, net: SequenceNet, data: TrainData) -> None:
        """Copy what the network needs from the training data (buffers), after construction."""

    def _loss_item_mask(self, data: TrainData) -> np.ndarray | None:
        """Items allowed in the training softmax (None: all of them)."""
        return None

    def _item_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Item vectors that real rows and generated rows train against, in that order.

        The same table by default; a subclass returns a second one when some part of the item
        vectors should learn from real rows only.
        """
        items = self.net_.item_vectors()
        return items, items

    def _transformer_kwargs(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "max_len": self.max_len,
            "dropout": self.dropout,
            "item_bias": self.item_bias,
        }

    # -- fit -------------------------------------------------------------------------------------

    def fit(self, data: TrainData, on_validation: ValidationHook | None = None) -> Self:
        with _torch_threads(self.num_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            rng = np.random.default_rng(self.seed)
            self.config_ = self._network_config(data)
            self.net_ = self._make_network(self.config_)
            self._init_from_data(self.net_, data)
            self.net_.to(self.device)
            self.n_items_ = data.n_items
            windows = make_windows(data.sequences, self.max_len)
            n_real = len(data.sequences) if data.n_real_rows is None else data.n_real_rows
            self._train(data, windows, windows.rows >= n_real, rng, on_validation)
        return self

    def _train(
        self,
        data: TrainData,
        windows: Windows,
        generated: np.ndarray,
        rng: np.random.Generator,
        on_validation: ValidationHook | None = None,
    ) -> None:
        """Epoch loop with early stopping on validation NDCG@10; the best state is restored."""
        optimizer = torch.optim.AdamW(
            self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        allowed = self._loss_item_mask(data)
        allowed_t = None if allowed is None else torch.as_tensor(allowed, device=self.device)
        candidates = np.flatnonzero(allowed) if allowed is not None else None
        can_validate = data.valid is not None and len(data.valid) > 0
        best = BestState(self.patience)
        self.history_: list[dict[str, float]] = []
        self.epoch_seconds_: list[float] = []
        for epoch in range(1, self.epochs + 1):
            started = time.perf_counter()
            loss = self._run_epoch(windows, generated, optimizer, rng, allowed_t, candidates)
            self.epoch_seconds_.append(time.perf_counter() - started)
            record = {"epoch": float(epoch), "loss": loss}
            if can_validate and epoch % self.eval_every == 0:
                record["valid_ndcg10"] = self._valid_ndcg(data.valid)
                best.update(epoch, record["valid_ndcg10"], self.net_)
            self.history_.append(record)
            self._log(record)
            if on_validation is not None and "valid_ndcg10" in record:
                on_validation(epoch, record["valid_ndcg10"])
            if best.exhausted:
                break
        if best.state is not None:
            self.net_.load_state_dict(best.state)
        self.best_epoch_ = best.epoch if best.state is not None else len(self.history_)
        self.best_score_ = best.score
        self.net_.eval()

    def _run_epoch(
        self,
        windows: Windows,
        generated: np.ndarray,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
        allowed: torch.Tensor | None,
        candidates: np.ndarray | None,
    ) -> float:
        self.net_.train()
        total, count = 0.0, 0
        for batch in length_bucketed_batches(windows.lengths, self.batch_size, rng):
            width = int(windows.lengths[batch].max())
            real_items, generated_items = self._item_tables()
            groups = [(batch, real_items)]
            if generated_items is not real_items:
                from_generated = generated[batch]
                groups = [
                    (batch[~from_generated], real_items),
                    (batch[from_generated], generated_items),
                ]
            loss_sum, n_targets = 0.0, 0
            for rows, items in groups:
                if len(rows) == 0:
                    continue
                part_sum, part_targets = self._weighted_loss_sum(
                    windows, rows, width, items, allowed, candidates, rng
                )
                loss_sum, n_targets = loss_sum + part_sum, n_targets + part_targets
            loss = loss_sum / n_targets
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        return total / max(count, 1)

    def _weighted_loss_sum(
        self,
        windows: Windows,
        rows: np.ndarray,
        width: int,
        items: torch.Tensor,
        allowed: torch.Tensor | None,
        candidates: np.ndarray | None,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, int]:
        """Sum of weighted per-position losses of some windows, and how many targets they have."""
        inputs = torch.as_tensor(windows.inputs[rows, -width:], device=self.device)
        targets = torch.as_tensor(windows.targets[rows, -width:], device=self.device)
        weights = torch.as_tensor(windows.weights[rows, -width:], device=self.device)
        at = targets >= 0
        hidden = self.net_.encode(inputs, items)[at]
        seen = history_pairs(inputs, at) if self.mask_history else None
        per_position = self._position_loss(
            hidden, items, targets[at], allowed, candidates, seen, rng
        )
        return (per_position * weights[at]).sum(), int(at.sum())

    def _position_loss(
        self,
        hidden: torch.Tensor,
        items: torch.Tensor,
        targets: torch.Tensor,
        allowed: torch.Tensor | None,
        candidates: np.ndarray | None,
        seen: tuple[torch.Tensor, torch.Tensor] | None,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Unreduced loss of every (hidden state, target) pair.

        ``seen`` (row, item) pairs leave the full softmax: evaluation never ranks an item of the
        history, so the model need not spend capacity on pushing those items down.
        """
        if self.loss == "ce":
            logits = self.net_.logits(hidden, items)
            if allowed is not None:
                logits = logits.masked_fill(~allowed, -torch.inf)
            if seen is not None:
                rows, cols = seen
                other = cols != targets[rows]  # a repeated target stays a target
                minus_inf = logits.new_tensor(-torch.inf)
                logits = logits.index_put((rows[other], cols[other]), minus_inf)
            return F.cross_entropy(logits, targets, reduction="none")
        pool = candidates if candidates is not None else self.n_items_
        negatives = torch.as_tensor(
            rng.choice(pool, size=(len(targets), self.n_negatives)), device=self.device
        )
        pos = self.net_.logits(hidden, items, targets[:, None])
        neg = self.net_.logits(hidden, items, negatives)
        neg = neg.masked_fill(negatives == targets[:, None], -torch.inf)
        if self.loss == "bce":
            neg_loss = F.softplus(neg).mean(-1)  # a masked negative (-inf) costs 0
            return F.softplus(-pos).squeeze(-1) + neg_loss
        logits = torch.cat([pos, neg], dim=1)
        return F.cross_entropy(logits, torch.zeros_like(targets), reduction="none")

    def _valid_ndcg(self, valid: EvalCases) -> float:
        ranks = np.concatenate(
            [
                rank_targets(self.score(batch.inputs), batch.targets, batch.inputs)
                for batch in _batches(valid, SCORE_BATCH)
            ]
        )
        return float(rank_metrics(ranks, (10,))["ndcg@10"].mean()) if len(ranks) else 0.0

    def _log(self, record: dict[str, float]) -> None:
        if self.verbose:
            parts = [
                f"{k}={v:.4f}" if k != "epoch" else f"epoch {int(v)}" for k, v in record.items()
            ]
            logger.info("%s %s", type(self).__name__, "  ".join(parts))

    # -- score -----------------------------------------------------------------------------------

    def score(self, histories: Sequences, user_index: np.ndarray | None = None) -> np.ndarray:
        """Dot product of the last hidden state of each history with every item vector.

        Only the last ``max_len`` items count; an empty history gets the scores of a history of
        padding (a constant row), which callers should replace with a popularity fallback.
        """
        self._check_fitted()
        if histories.n_events and int(histories.items.max()) >= self.n_items_:
            raise ValueError(f"history item outside the {self.n_items_} items seen in fit")
        was_training = self.net_.training
        self.net_.eval()
        out = np.empty((len(histories), self.n_items_), dtype=np.float32)
        with torch.no_grad():
            items = self.net_.item_vectors()
            # Rows sorted by length: each batch is only as wide as its own longest history.
            by_length = np.argsort(histories.lengths, kind="stable")
            for start in range(0, len(histories), SCORE_BATCH):
                rows = by_length[start : start + SCORE_BATCH]
                inputs = torch.as_tensor(
                    history_matrix(histories.select_rows(rows), self.max_len), device=self.device
                )
                last = self.net_.encode(inputs, items)[:, -1]
                out[rows] = self.net_.logits(last, items).cpu().numpy()
        self.net_.train(was_training)
        return out

    # -- persistence -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """A torch checkpoint of plain values and tensors, loadable with ``weights_only=True``."""
        self._check_fitted()
        torch.save(
            {
                "format": CHECKPOINT_FORMAT,
                "class": type(self).__name__,
                "params": self.get_params(),
                "config": self.config_,
                "state": {k: v.cpu() for k, v in self.net_.state_dict().items()},
                "n_items": self.n_items_,
                "best_epoch": self.best_epoch_,
                "best_score": self.best_score_,
                "history": self.history_,
            },
            Path(path),
        )

    @classmethod
    def load(cls, path: str | Path) -> Self:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
        if ckpt.get("class") != cls.__name__:
            raise TypeError(f"{path} holds a {ckpt.get('class')}, not a {cls.__name__}")
        model = cls(**ckpt["params"])
        model.config_ = ckpt["config"]
        model.net_ = model._make_network(model.config_)
        model.net_.load_state_dict(ckpt["state"])
        model.net_.to(model.device).eval()
        model.n_items_ = ckpt["n_items"]
        model.best_epoch_ = ckpt["best_epoch"]
        model.best_score_ = ckpt["best_score"]
        model.history_ = ckpt["history"]
        return model


def _batches(cases: EvalCases, size: int) -> Iterator[EvalCases]:
    for start in range(0, len(cases), size):
        yield cases.select(np.arange(start, min(start + size, len(cases))))


class SASRec(SequentialRecommender):
    """Self-attentive sequential recommendation over item IDs (Kang & McAuley, ICDM 2018).

    Differences from the paper, all standard in later reproductions: full-softmax cross-entropy
    over the catalog by default (``loss="ce"``; ``"bce"`` with ``n_negatives=1`` is the paper's),
    GELU feed-forward, and pre-norm blocks. Early stopping uses ``TrainData.valid`` (NDCG@10, full
    ranking, seen items excluded) every ``eval_every`` epochs, with ``patience`` evaluations.
    """

    name: ClassVar[str] = "sasrec"

    def _make_network(self, config: dict[str, Any]) -> SequenceNet:
        return IdSequenceNet(config["n_items"], **self._transformer_kwargs())
