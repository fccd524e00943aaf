"""Where a held-out target lands in a model's ranking of the whole catalog, and what that scores.

Training (SASRec's early stopping on validation) and evaluation (every benchmark) must rank a
target by the same rule, or a model would be chosen on one number and judged on another. Both
call :func:`rank_targets` and :func:`rank_metrics`; the tie rule is the one of
:func:`shopaug.models.base.top_k`, so a target at rank r is exactly the (r+1)-th recommended item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from shopaug.data.sequences import Sequences
from shopaug.models.base import mask_seen


def discount(positions: np.ndarray) -> np.ndarray:
    """DCG gain of a hit at 1-based ``positions``: ``1 / log2(position + 1)``.

    The single-target nDCG (``1 / log2(rank + 2)`` for a 0-based rank) and the multi-target nDCG
    of :func:`shopaug.evaluate.metrics.evaluate_lists` both use this, so they agree by
    construction.
    """
    return 1.0 / np.log2(np.asarray(positions, dtype=np.float64) + 1.0)


def check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    """Cut-offs as a sorted tuple of distinct positive integers; anything else is a caller error."""
    out = sorted({int(k) for k in ks})
    if not out or out[0] < 1:
        raise ValueError(f"cut-offs k must be integers >= 1, got {list(ks)}")
    return tuple(out)


def rank_targets(
    scores: np.ndarray, targets: np.ndarray, histories: Sequences | None = None
) -> np.ndarray:
    """0-based rank of each row's target among all items, history items excluded.

    Rank = #(score > target score) + #(score == target score and item index < target index).
    History items are set to -inf on a copy; a target that is excluded itself (in the history),
    or whose score is -inf or NaN, can never be recommended and gets the worst rank,
    ``n_items - 1``.
    """
    scores = np.asarray(scores)
    if histories is not None:
        scores = scores.copy()
        mask_seen(scores, histories)
    return _ranks(scores, np.asarray(targets, dtype=np.int64))


def _ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    n_rows, n_items = scores.shape
    target_scores = scores[np.arange(n_rows), targets][:, None]
    ranks = np.count_nonzero(scores > target_scores, axis=1)
    # Ties are rare with float scores: look at lower-index ties only in rows that have any.
    ties = np.count_nonzero(scores == target_scores, axis=1) > 1
    if ties.any():
        tied = scores[ties] == target_scores[ties]
        before = np.arange(n_items) < targets[ties, None]
        ranks[ties] += np.count_nonzero(tied & before, axis=1)
    ranks[~(target_scores[:, 0] > -np.inf)] = n_items - 1
    return ranks.astype(np.int64)


def rank_metrics(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-case metrics of a single target at 0-based ``ranks``.

    recall@K (= hit rate with one target) is 1 if rank < K; ndcg@K is ``1/log2(rank+2)`` if
    rank < K, else 0 (the ideal DCG of one target is 1); mrr is ``1/(rank+1)`` with no cut-off.
    """
    ranks = np.asarray(ranks)
    gain = discount(ranks + 1)
    out: dict[str, np.ndarray] = {}
    for k in check_ks(ks):
        inside = ranks < k
        out[f"recall@{k}"] = inside.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(inside, gain, 0.0)
    out["mrr"] = 1.0 / (ranks + 1.0)
    return out
