"""Ragged per-user item sequences held as flat numpy arrays (CSR layout).

Models and splits work on integer item indices; millions of users must not become millions of Python
lists, so a collection of sequences is an ``indptr``/``items`` pair like a CSR matrix row structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sequences:
    """``items[indptr[u]:indptr[u+1]]`` is the time-ordered item sequence of row ``u``.

    ``users`` holds the external user id of each row; ``weights`` (same length as ``items``) carries a
    per-event sample weight, 1.0 for real events and lower for generated ones.
    """

    users: np.ndarray
    indptr: np.ndarray
    items: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.indptr) != len(self.users) + 1:
            raise ValueError(
                f"indptr has {len(self.indptr)} entries, expected len(users)+1={len(self.users) + 1}"
            )
        if len(self.indptr) and self.indptr[-1] != len(self.items):
            raise ValueError(
                f"indptr ends at {self.indptr[-1]} but there are {len(self.items)} items"
            )
        if self.weights is not None and len(self.weights) != len(self.items):
            raise ValueError("weights must have one entry per item event")

    @classmethod
    def from_lists(
        cls,
        users: list | np.ndarray,
        seqs: list[list[int]],
        weights: list[list[float]] | None = None,
    ) -> Sequences:
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        indptr = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(indptr[-1]))
        w = None
        if weights is not None:
            w = np.fromiter(
                (x for s in weights for x in s), dtype=np.float32, count=int(indptr[-1])
            )
        return cls(np.asarray(users), indptr, flat, w)

    @classmethod
    def from_rows(
        cls,
        user_codes: np.ndarray,
        items: np.ndarray,
        users: np.ndarray,
        weights: np.ndarray | None = None,
    ) -> Sequences:
        """Build from events already sorted by (user, time); ``user_codes`` index into ``users``."""
        counts = np.bincount(user_codes, minlength=len(users))
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(np.asarray(users), indptr, np.asarray(items, dtype=np.int64), weights)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def n_events(self) -> int:
        return int(self.indptr[-1])

    def row(self, u: int) -> np.ndarray:
        return self.items[self.indptr[u] : self.indptr[u + 1]]

    def to_lists(self) -> list[list[int]]:
        return [self.row(u).tolist() for u in range(len(self))]

    def event_weights(self) -> np.ndarray:
        if self.weights is None:
            return np.ones(len(self.items), dtype=np.float32)
        return self.weights

    def row_ids(self) -> np.ndarray:
        """Row index of every event (the inverse of ``indptr``)."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def positions(self) -> np.ndarray:
        """Position of every event inside its row (0 for the first event of a user)."""
        return np.arange(len(self.items), dtype=np.int64) - np.repeat(
            self.indptr[:-1], self.lengths
        )

    def select_events(self, keep: np.ndarray) -> Sequences:
        """Keep the events where ``keep`` is true; rows keep their order (and may become empty)."""
        rows = self.row_ids()[keep]
        counts = np.bincount(rows, minlength=len(self))
        indptr = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        w = None if self.weights is None else self.weights[keep]
        return Sequences(self.users, indptr, self.items[keep], w)

    def select_rows(self, rows: np.ndarray) -> Sequences:
        """Keep the given rows (a boolean mask or indices), in that order."""
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        lengths = self.lengths[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        starts = np.repeat(self.indptr[rows], lengths)
        offsets = np.arange(int(indptr[-1]), dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        take = starts + offsets
        w = None if self.weights is None else self.weights[take]
        return Sequences(self.users[rows], indptr, self.items[take], w)

    def truncate(self, drop_last: int) -> Sequences:
        """Drop the last ``drop_last`` events of every row (rows shorter than that become empty)."""
        pos_from_end = np.repeat(self.indptr[1:], self.lengths) - np.arange(len(self.items)) - 1
        return self.select_events(pos_from_end >= drop_last)

    def last(self, offset: int = 1) -> np.ndarray:
        """The item ``offset`` places from the end of every row (rows must be long enough)."""
        if np.any(self.lengths < offset):
            raise ValueError(f"some rows have fewer than {offset} events")
        return self.items[self.indptr[1:] - offset]


def rank_within_runs(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... inside each run of equal values of ``groups`` (sorted by group).

    The position of each entry within its group once entries are sorted by group and then by
    whatever orders them inside it: the top-k per row, the n-th purchase of a session, the rank
    of a recommendation in a user's list all reduce to this.
    """
    groups = np.asarray(groups)
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return np.arange(n, dtype=np.int64) - np.repeat(starts, np.diff(np.r_[starts, n]))
