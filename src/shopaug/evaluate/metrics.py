"""Metrics on top-k lists: accuracy against held-out truth, and what the lists look like.

Two kinds of callers meet here. The benchmark has one target per case and ranks the whole catalog
(see :mod:`shopaug.evaluate.ranking`); it needs the beyond-accuracy measures of BENCHMARK.md on the
top-10 lists. ``shopaug evaluate`` judges any system's lists, where a user may have several relevant
items; it uses the textbook definitions with binary relevance so that its numbers can be compared
with other libraries' numbers. Everything is vectorised: a million-row prediction file is a few
array passes, not a million Python iterations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shopaug.data.errors import DataError
from shopaug.data.sequences import Sequences, rank_within_runs
from shopaug.models.ranking import check_ks, discount

PRED_COLUMNS = ("user_id", "item_id", "rank")
TRUTH_COLUMNS = ("user_id", "item_id")
#: Lists are processed this many at a time where a (lists x dim) block is built.
_LIST_CHUNK = 16384


# --- shared pieces ---------------------------------------------------------------------------


def item_popularity(train: Sequences, n_items: int) -> np.ndarray:
    """Number of distinct training rows (users) that contain each catalog item.

    Distinct users, not events, so that one user repeating an item does not make it "popular"; it
    is the count behind the novelty probability and the popularity slices.
    """
    pairs = np.unique(train.row_ids() * np.int64(n_items) + train.items)
    return np.bincount(pairs % n_items, minlength=n_items).astype(np.int64)


# --- beyond accuracy on top-k lists ----------------------------------------------------------
#
# ``lists`` is an (n_lists, k) integer array of item indices, best first. Entries < 0 are padding
# (a list shorter than k) and are ignored everywhere.


def catalog_coverage(lists: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one list: does the system use its catalog?"""
    items = np.asarray(lists).ravel()
    return float(len(np.unique(items[items >= 0])) / n_items) if n_items else 0.0


def intra_list_diversity(lists: np.ndarray, item_embeddings: np.ndarray) -> float:
    """Mean pairwise cosine distance ``1 - cos(e_i, e_j)`` within each list, averaged over lists.

    With unit vectors, the sum of all pairwise similarities in a list is ``|sum e|^2 - sum |e|^2``,
    so no (k x k) Gram matrix and no (lists x k x dim) block is built: one (lists x dim) sum per
    chunk of lists. An item whose embedding is all zeros has no direction: its pairs count as
    similarity 0 (distance 1). Lists with fewer than two items have no pairs and are left out.
    """
    lists = np.asarray(lists)
    emb = np.asarray(item_embeddings, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    # One extra all-zero row, so that padding (-1) indexes a vector that adds nothing.
    unit = np.zeros((len(emb) + 1, emb.shape[1]), dtype=np.float32)
    np.divide(emb, norms, out=unit[:-1], where=norms > 0)
    has_direction = np.append(norms[:, 0] > 0, False)
    total, n_lists = 0.0, 0
    for start in range(0, len(lists), _LIST_CHUNK):
        chunk = lists[start : start + _LIST_CHUNK]
        summed = np.zeros((len(chunk), unit.shape[1]), dtype=np.float32)
        for position in range(chunk.shape[1]):
            summed += unit[chunk[:, position]]
        self_sim = has_direction[chunk].sum(axis=1)
        pair_sim = np.einsum("ij,ij->i", summed, summed, dtype=np.float64) - self_sim
        k = (chunk >= 0).sum(axis=1)
        has_pairs = k >= 2
        n_pairs = k[has_pairs] * (k[has_pairs] - 1)  # ordered pairs, as in pair_sim
        total += float((1.0 - pair_sim[has_pairs] / n_pairs).sum())
        n_lists += int(has_pairs.sum())
    return total / n_lists if n_lists else 0.0


def self_information(item_popularity: np.ndarray, n_users: int) -> np.ndarray:
    """``-log2 p_i`` with ``p_i = (users with item i + 1) / (n_users + 1)``.

    The +1 smoothing keeps items no training user has (cold items) finite, at the maximum
    ``log2(n_users + 1)``, while an item every user has scores 0, so the scale stays in bits.
    """
    p = (np.asarray(item_popularity, dtype=np.float64) + 1.0) / (n_users + 1.0)
    return -np.log2(p)


def novelty(lists: np.ndarray, item_popularity: np.ndarray, n_users: int) -> float:
    """Mean self-information (bits) of the recommended items: how unexpected the lists are."""
    return _mean_over_entries(lists, self_information(item_popularity, n_users))


def mean_popularity(lists: np.ndarray, item_popularity: np.ndarray) -> float:
    """Mean number of training users who have each recommended item (popularity bias)."""
    return _mean_over_entries(lists, np.asarray(item_popularity, dtype=np.float64))


def beyond_accuracy(
    lists: np.ndarray,
    n_items: int,
    item_popularity: np.ndarray,
    n_users: int,
    item_embeddings: np.ndarray | None = None,
) -> dict[str, float]:
    """All beyond-accuracy measures of BENCHMARK.md in one dict (diversity needs embeddings)."""
    out = {
        "coverage": catalog_coverage(lists, n_items),
        "novelty": novelty(lists, item_popularity, n_users),
        "mean_popularity": mean_popularity(lists, item_popularity),
    }
    if item_embeddings is not None:
        out["diversity"] = intra_list_diversity(lists, item_embeddings)
    return out


def _mean_over_entries(lists: np.ndarray, per_item: np.ndarray) -> float:
    items = np.asarray(lists).ravel()
    items = items[items >= 0]
    return float(per_item[items].mean()) if len(items) else 0.0


# --- accuracy of any system's lists against truth --------------------------------------------


@dataclass(frozen=True)
class ListMetrics:
    """Per-user metrics of :func:`list_metrics_per_user`, one entry per user in the truth."""

    users: np.ndarray
    values: dict[str, np.ndarray]
    n_users_without_predictions: int
    n_pred_users_not_in_truth: int

    def means(self) -> dict[str, float]:
        return {name: float(v.mean()) for name, v in self.values.items()}


def evaluate_lists(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    ks: Sequence[int] = (10, 20, 50),
    *,
    pred_name: str = "pred",
    truth_name: str = "truth",
) -> dict:
    """Recall, precision, hit, nDCG at each k and MRR of ranked lists, averaged over truth users.

    ``pred`` has ``user_id, item_id, rank`` (1 = best); ``truth`` has ``user_id, item_id``, every
    row a relevant item. Users in the truth without any prediction score zero on every metric;
    predicted users absent from the truth are ignored and counted. ``pred_name``/``truth_name``
    (usually the file paths) appear in error messages.
    """
    result = list_metrics_per_user(pred, truth, ks, pred_name=pred_name, truth_name=truth_name)
    return {
        "metrics": result.means(),
        "n_users": len(result.users),
        "n_users_without_predictions": result.n_users_without_predictions,
        "n_pred_users_not_in_truth": result.n_pred_users_not_in_truth,
    }


def list_metrics_per_user(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    ks: Sequence[int] = (10, 20, 50),
    *,
    pred_name: str = "pred",
    truth_name: str = "truth",
) -> ListMetrics:
    """The per-user values behind :func:`evaluate_lists` (for bootstraps and slices).

    Definitions (binary relevance, 1-based list positions ``i``): hits@k = relevant items at
    ``i <= k``; recall@k = hits / |relevant|; precision@k = hits / k (also when the list is
    shorter than k); hit@k = 1 if hits > 0; nDCG@k = DCG / IDCG with DCG = sum of
    ``1/log2(i+1)`` over hits and IDCG the DCG of ``min(|relevant|, k)`` hits at the top;
    MRR = 1 / position of the first relevant item anywhere in the list, 0 if none.

    A user's list is ordered by ``rank``, equal ranks by order of appearance in ``pred``; an item
    listed twice for a user keeps its best (first in that order) position and the later copy is
    dropped, so positions are contiguous 1, 2, 3, ...
    """
    ks = check_ks(ks)
    pred = _validated(pred, PRED_COLUMNS, pred_name)
    truth = _validated(truth, TRUTH_COLUMNS, truth_name)
    if truth.empty:
        raise DataError(f"{truth_name}: no rows; there is nothing to evaluate against")
    ranks = _validated_ranks(pred["rank"], pred_name)
    _align_id_types(pred, truth)

    users, truth_user = _codes(truth["user_id"])
    pred_user = pd.Index(users).get_indexer(pred["user_id"])
    in_truth = pred_user >= 0
    n_outside = int(pd.unique(pred["user_id"][~in_truth]).size)

    items = pd.Index(pd.unique(pd.concat([truth["item_id"], pred["item_id"]], ignore_index=True)))
    n_codes = max(len(items), 1)
    truth_keys = np.unique(truth_user * np.int64(n_codes) + items.get_indexer(truth["item_id"]))
    n_relevant = np.bincount(truth_keys // n_codes, minlength=len(users))

    user, position, relevant = _ranked_lists(
        pred_user[in_truth],
        items.get_indexer(pred["item_id"][in_truth]),
        ranks[in_truth],
        n_codes,
        truth_keys,
    )
    values = _metrics_from_hits(user, position, relevant, n_relevant, ks)
    has_pred = np.bincount(user, minlength=len(users)) > 0
    return ListMetrics(users, values, int((~has_pred).sum()), n_outside)


def _ranked_lists(
    user: np.ndarray,
    item: np.ndarray,
    rank: np.ndarray,
    n_codes: int,
    truth_keys: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort predictions into per-user lists; return user, 1-based position and relevance per row."""
    order = np.lexsort((np.arange(len(user)), rank, user))
    keys = user[order] * np.int64(n_codes) + item[order]
    first = np.sort(np.unique(keys, return_index=True)[1])  # best copy of each (user, item)
    user, keys = user[order[first]], keys[first]
    position = rank_within_runs(user) + 1
    relevant = np.isin(keys, truth_keys)
    return user, position, relevant


def _metrics_from_hits(
    user: np.ndarray,
    position: np.ndarray,
    relevant: np.ndarray,
    n_relevant: np.ndarray,
    ks: tuple[int, ...],
) -> dict[str, np.ndarray]:
    n_users = len(n_relevant)
    hit_user, hit_pos = user[relevant], position[relevant]
    ideal = np.concatenate(([0.0], np.cumsum(discount(np.arange(1, max(ks) + 1)))))
    out: dict[str, np.ndarray] = {}
    for k in ks:
        within = hit_pos <= k
        hits = np.bincount(hit_user[within], minlength=n_users).astype(np.float64)
        dcg = np.bincount(hit_user[within], weights=discount(hit_pos[within]), minlength=n_users)
        out[f"recall@{k}"] = hits / n_relevant
        out[f"ndcg@{k}"] = dcg / ideal[np.minimum(n_relevant, k)]
        out[f"precision@{k}"] = hits / k
        out[f"hit@{k}"] = (hits > 0).astype(np.float64)
    # Rows are in list order within each user, so a user's first hit is the first relevant row.
    hit_users, first = np.unique(hit_user, return_index=True)
    out["mrr"] = np.zeros(n_users)
    out["mrr"][hit_users] = 1.0 / hit_pos[first]
    return out


def _validated(frame: pd.DataFrame, required: tuple[str, ...], name: str) -> pd.DataFrame:
    """The required columns, with every id present; errors name the file, column and row."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{name}: missing required column {missing[0]!r} "
            f"(needs {', '.join(required)}; found {', '.join(map(str, frame.columns)) or 'none'})"
        )
    out = frame.loc[:, list(required)].reset_index(drop=True)
    for column in ("user_id", "item_id"):
        empty = out[column].isna().to_numpy()
        if empty.any():
            _raise_bad_rows(name, column, empty, out[column], "is empty")
    return out


def _validated_ranks(column: pd.Series, name: str) -> np.ndarray:
    """Ranks as int64; a rank that is missing, fractional, non-numeric or < 1 is an error."""
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(numbers) & (numbers >= 1) & (numbers == np.floor(numbers)))
    if bad.any():
        _raise_bad_rows(name, "rank", bad, column, "is not an integer >= 1")
    return numbers.astype(np.int64)


def _raise_bad_rows(name: str, column: str, bad: np.ndarray, values: pd.Series, what: str) -> None:
    """Name the first bad record (1-based, header not counted) and how many there are."""
    row = int(np.flatnonzero(bad)[0])
    count = int(bad.sum())
    more = f" ({count:,} rows like this)" if count > 1 else ""
    raise DataError(f"{name}: column {column!r}, row {row + 1}: {values.iloc[row]!r} {what}{more}")


def _align_id_types(pred: pd.DataFrame, truth: pd.DataFrame) -> None:
    """If one file has numeric ids and the other text ids, compare both as text (in place)."""
    for column in ("user_id", "item_id"):
        numeric = {pd.api.types.is_numeric_dtype(f[column]) for f in (pred, truth)}
        if len(numeric) == 2:
            for frame in (pred, truth):
                frame[column] = frame[column].astype(str)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values in order of first appearance, and each row's code into them."""
    codes, uniques = pd.factorize(values)
    return np.asarray(uniques), codes.astype(np.int64)
