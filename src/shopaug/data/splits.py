"""Train/validation/test splits of the benchmark protocols (../shared/BENCHMARK.md) and a time split.

Every split keeps the test and validation targets out of ``Split.train``: that array is the only thing
a strategy, filter or model may learn from. Evaluation cases carry their own input history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from shopaug.data.sequences import Sequences

Protocol = Literal["W", "C", "S", "T"]

#: Fraction of items held out as cold in protocol C, and of users kept in protocol S.
COLD_ITEM_SHARE = 0.15
SPARSE_USER_SHARE = 0.25
#: Users left with fewer events than this after removing cold items leave the training data (C).
MIN_TRAIN_EVENTS_COLD = 3


@dataclass(frozen=True)
class EvalCases:
    """One case per row: predict ``targets[r]`` from the history ``inputs.row(r)``.

    ``inputs.users`` holds the external user ids; ``user_index`` the row of that user in the
    dataset's user table, so a model that learned user embeddings can look them up.
    """

    inputs: Sequences
    targets: np.ndarray
    user_index: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    def select(self, rows: np.ndarray) -> EvalCases:
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows
        return EvalCases(self.inputs.select_rows(rows), self.targets[rows], self.user_index[rows])


@dataclass(frozen=True)
class Split:
    """What a model may train on, and the cases it is selected (valid) and judged (test) on."""

    protocol: str
    n_items: int
    train: Sequences
    train_user_index: np.ndarray
    valid: EvalCases
    test: EvalCases
    cold_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def cold_mask(self) -> np.ndarray:
        """Boolean over the catalog: True for items held out as cold."""
        mask = np.zeros(self.n_items, dtype=bool)
        mask[self.cold_items] = True
        return mask

    def summary(self) -> dict[str, int | str]:
        return {
            "protocol": self.protocol,
            "train_users": len(self.train),
            "train_events": self.train.n_events,
            "valid_cases": len(self.valid),
            "test_cases": len(self.test),
            "cold_items": len(self.cold_items),
        }


def leave_one_out(sequences: Sequences, n_items: int) -> Split:
    """Protocol W: test on the last item, validate on the one before, train on the rest.

    Users with fewer than 3 events cannot give a training prefix, a validation and a test case,
    so they are required to have 3 or more (the Amazon 5-core data always does).
    """
    _require_min_length(sequences, 3, "leave-one-out")
    rows = np.arange(len(sequences))
    test = EvalCases(sequences.truncate(1), sequences.last(1), rows)
    valid = EvalCases(sequences.truncate(2), sequences.last(2), rows)
    return Split("W", n_items, sequences.truncate(2), rows, valid, test)


def cold_item_split(
    sequences: Sequences, n_items: int, seed: int = 0, share: float = COLD_ITEM_SHARE
) -> Split:
    """Protocol C: hold out ``share`` of the catalog as cold items the model never sees in training.

    Cold items are drawn with ``default_rng(seed).choice(n_items, round(share * n_items),
    replace=False)``. Training and validation inputs lose every cold item; users left with fewer
    than 3 training events leave training. A validation case whose target is cold is dropped,
    since choosing a model on cold targets would leak their interactions. Test cases are those of
    protocol W, on the original sequences, so cold items appear in test histories and targets.
    """
    _require_min_length(sequences, 3, "cold-item split")
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(n_items, size=round(share * n_items), replace=False))
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[cold] = True

    rows = np.arange(len(sequences))
    test = EvalCases(sequences.truncate(1), sequences.last(1), rows)

    train_all = sequences.truncate(2).select_events(~is_cold[sequences.truncate(2).items])
    keep = train_all.lengths >= MIN_TRAIN_EVENTS_COLD
    train = train_all.select_rows(keep)
    train_rows = rows[keep]

    valid_target = sequences.last(2)
    valid_keep = keep & ~is_cold[valid_target]
    valid = EvalCases(train_all.select_rows(valid_keep), valid_target[valid_keep], rows[valid_keep])
    return Split("C", n_items, train, train_rows, valid, test, cold_items=cold)


def sparse_user_split(
    sequences: Sequences, n_items: int, seed: int = 0, share: float = SPARSE_USER_SHARE
) -> Split:
    """Protocol S: train on a random ``share`` of users; test every user as in protocol W.

    Users are drawn with ``default_rng(seed).choice(n_users, round(share * n_users),
    replace=False)``. Validation uses the kept users only, so model selection sees no more labelled
    data than training does; the other users appear only as test histories.
    """
    base = leave_one_out(sequences, n_items)
    rng = np.random.default_rng(seed)
    n = len(sequences)
    kept = np.sort(rng.choice(n, size=round(share * n), replace=False))
    return Split(
        "S",
        n_items,
        base.train.select_rows(kept),
        kept,
        base.valid.select(kept),
        base.test,
    )


def time_split(
    sequences: Sequences,
    timestamps: np.ndarray,
    n_items: int,
    valid_share: float = 0.1,
    test_share: float = 0.1,
) -> Split:
    """Global temporal split for logs with timestamps: the last events in time are held out.

    Two cut points are taken at the ``1 - test_share - valid_share`` and ``1 - test_share``
    quantiles of all event times. Each user's first event after a cut becomes that period's case
    (with everything before it as input); training keeps only events before the first cut, so no
    information from the future reaches a model.
    """
    if len(timestamps) != sequences.n_events:
        raise ValueError("timestamps must have one entry per event")
    t = np.asarray(timestamps)
    if t.dtype.kind == "M":
        t = t.astype("datetime64[ns]").astype(np.int64)
    t_valid, t_test = np.quantile(t, [1.0 - test_share - valid_share, 1.0 - test_share])
    train = sequences.select_events(t < t_valid)
    rows = np.arange(len(sequences))
    valid = _first_case_after(sequences, t, t_valid, t_test)
    test = _first_case_after(sequences, t, t_test, np.inf)
    has_train = train.lengths > 0
    return Split("T", n_items, train.select_rows(has_train), rows[has_train], valid, test)


def _first_case_after(seq: Sequences, t: np.ndarray, start: float, end: float) -> EvalCases:
    """For each user, the first event in [start, end) as target, all earlier events as input."""
    in_window = (t >= start) & (t < end)
    row_ids = seq.row_ids()
    first_idx = np.full(len(seq), -1, dtype=np.int64)
    idx = np.flatnonzero(in_window)
    # Events are sorted by row, so the first occurrence of each row id is its earliest event.
    window_rows, first = np.unique(row_ids[idx], return_index=True)
    first_idx[window_rows] = idx[first]
    rows = np.flatnonzero((first_idx >= 0) & (first_idx > seq.indptr[:-1]))
    positions = seq.positions()
    cut = np.zeros(len(seq), dtype=np.int64)
    cut[rows] = positions[first_idx[rows]]
    keep = np.zeros(seq.n_events, dtype=bool)
    keep[positions < cut[row_ids]] = True
    inputs = seq.select_events(keep).select_rows(rows)
    return EvalCases(inputs, seq.items[first_idx[rows]], rows)


def make_split(
    protocol: Protocol,
    sequences: Sequences,
    n_items: int,
    seed: int = 0,
    timestamps: np.ndarray | None = None,
) -> Split:
    """Dispatch on the protocol letter used throughout the CLI and configs."""
    if protocol == "W":
        return leave_one_out(sequences, n_items)
    if protocol == "C":
        return cold_item_split(sequences, n_items, seed=seed)
    if protocol == "S":
        return sparse_user_split(sequences, n_items, seed=seed)
    if protocol == "T":
        if timestamps is None:
            raise ValueError("protocol T (time split) needs event timestamps; this data has none")
        return time_split(sequences, timestamps, n_items)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of W, C, S, T")


def _require_min_length(seq: Sequences, n: int, what: str) -> None:
    short = np.flatnonzero(seq.lengths < n)
    if len(short):
        # tolist() gives a plain Python value, so the message reads 'bob', not np.str_('bob').
        example = seq.users[short[0] : short[0] + 1].tolist()[0]
        raise ValueError(
            f"{what} needs at least {n} events per user; {len(short)} users have fewer "
            f"(first: user {example!r} with {seq.lengths[short[0]]}). "
            f"Filter them first, e.g. with Dataset.sequences(min_length={n})."
        )
