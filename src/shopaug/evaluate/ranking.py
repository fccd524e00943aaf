"""Full-ranking evaluation of a fitted recommender (protocols W, C and S of BENCHMARK.md).

Every catalog item is scored for every case; items in the case's input history are excluded (set
to -inf), and the rank of the one held-out target among all items gives every accuracy metric.
Cases are scored in batches of rows, so memory stays at ``batch_size x n_items`` floats whatever
the number of users, and each batch is a handful of whole-matrix numpy operations.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shopaug.data.splits import EvalCases
from shopaug.models.base import Recommender, mask_seen, top_k
from shopaug.models.ranking import check_ks, rank_metrics, rank_targets
from shopaug.progress import StageCallback


@dataclass(frozen=True)
class RankingResult:
    """What one evaluation run keeps per case; every metric is derived from it later.

    ``ranks`` are 0-based positions of each target among all catalog items (0 = top);
    ``top_items`` the first ``topk_for_lists`` recommended items of each case, for the
    beyond-accuracy measures; ``users`` the external user id of each case.
    """

    ranks: np.ndarray
    targets: np.ndarray
    top_items: np.ndarray
    users: np.ndarray
    n_items: int
    ks: tuple[int, ...]
    seconds: float

    def __len__(self) -> int:
        return len(self.ranks)

    def per_case(self, ks: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Recall@K, NDCG@K per K and MRR of every case (see :func:`rank_metrics`)."""
        return rank_metrics(self.ranks, self.ks if ks is None else ks)

    def means(self, mask: np.ndarray | None = None) -> dict[str, float]:
        """Each metric averaged over all cases, or over the cases where ``mask`` is true."""
        values = self.per_case()
        if mask is not None:
            values = {name: v[mask] for name, v in values.items()}
        return {name: float(v.mean()) if len(v) else float("nan") for name, v in values.items()}

    def save(self, path: Path) -> None:
        """One compressed ``.npz``: the per-case arrays, the cut-offs, catalog size and time."""
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        meta = np.array([self.n_items, self.seconds])
        np.savez_compressed(path, **arrays, ks=np.array(self.ks), meta=meta)

    @classmethod
    def load(cls, path: Path) -> RankingResult:
        with np.load(path, allow_pickle=True) as f:  # user ids are objects; our own file
            n_items, seconds = f["meta"]
            return cls(
                *(f[name] for name in _ARRAYS),
                n_items=int(n_items),
                ks=tuple(int(k) for k in f["ks"]),
                seconds=float(seconds),
            )


#: The per-case arrays of a :class:`RankingResult`, in field order.
_ARRAYS = ("ranks", "targets", "top_items", "users")


def evaluate_model(
    model: Recommender,
    cases: EvalCases,
    *,
    ks: Sequence[int] = (10, 20, 50),
    topk_for_lists: int = 10,
    batch_size: int = 1024,
    exclude_seen: bool = True,
    on_progress: StageCallback | None = None,
) -> RankingResult:
    """Rank every case's target over the whole catalog with ``model.score``, batch by batch.

    ``exclude_seen`` follows the benchmark (items in the input history are not ranked); turn it
    off only for data where repeat purchases are the thing to predict. ``on_progress(stage,
    fraction)`` is called after each batch, for a progress bar.
    """
    ks = check_ks(ks)
    n_items = _catalog_size(model)
    targets = np.asarray(cases.targets, dtype=np.int64)
    if len(targets) and (targets.min() < 0 or targets.max() >= n_items):
        raise ValueError(f"a target item is outside the model's catalog of {n_items} items")
    k_lists = min(topk_for_lists, n_items)
    ranks = np.empty(len(cases), dtype=np.int64)
    top_items = np.empty((len(cases), k_lists), dtype=np.int64)
    started = time.perf_counter()
    for start in range(0, len(cases), batch_size):
        rows = np.arange(start, min(start + batch_size, len(cases)))
        scores = _batch_scores(model, cases, rows, n_items, exclude_seen)
        ranks[rows] = rank_targets(scores, targets[rows])
        top_items[rows] = top_k(scores, k_lists)
        if on_progress is not None:
            on_progress("ranking", rows[-1] / max(len(cases) - 1, 1))
    return RankingResult(
        ranks=ranks,
        targets=targets,
        top_items=top_items,
        users=np.asarray(cases.inputs.users),
        n_items=n_items,
        ks=ks,
        seconds=time.perf_counter() - started,
    )


def concat_results(parts: Sequence[RankingResult], seconds: float) -> RankingResult:
    """One result from the results of consecutive slices of the same cases (sharded scoring);
    ``seconds`` is the wall time of the whole, not the sum of the shards' times."""
    if not parts:
        raise ValueError("no results to join")
    first = parts[0]
    return RankingResult(
        ranks=np.concatenate([p.ranks for p in parts]),
        targets=np.concatenate([p.targets for p in parts]),
        top_items=np.concatenate([p.top_items for p in parts]),
        users=np.concatenate([p.users for p in parts]),
        n_items=first.n_items,
        ks=first.ks,
        seconds=seconds,
    )


def _catalog_size(model: Recommender) -> int:
    n_items = getattr(model, "n_items_", None)
    if n_items is None:
        raise RuntimeError(f"{type(model).__name__} is not fitted; call fit() first")
    return int(n_items)


def _batch_scores(
    model: Recommender, cases: EvalCases, rows: np.ndarray, n_items: int, exclude_seen: bool
) -> np.ndarray:
    """Scores of one batch as a float32 copy we may modify (a model may hand out its own arrays)."""
    histories = cases.inputs.select_rows(rows)
    scores = np.array(model.score(histories, cases.user_index[rows]), dtype=np.float32)
    if scores.shape != (len(rows), n_items):
        raise ValueError(
            f"{type(model).__name__}.score returned shape {scores.shape}, "
            f"expected ({len(rows)}, {n_items})"
        )
    if exclude_seen:
        mask_seen(scores, histories)
    return scores


def slice_masks(
    targets: np.ndarray, item_popularity: np.ndarray, cold_mask: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Boolean masks over cases for the benchmark's slices.

    ``all``; ``cold``/``warm`` by whether the target is a cold item (only with ``cold_mask``);
    ``pop_low``/``pop_mid``/``pop_high`` by the training popularity of the target (see
    :func:`popularity_cuts`). A slice depends on the target's popularity alone, so the same
    target item never lands in two popularity slices.
    """
    targets = np.asarray(targets, dtype=np.int64)
    masks = {"all": np.ones(len(targets), dtype=bool)}
    if cold_mask is not None:
        cold = np.asarray(cold_mask, dtype=bool)[targets]
        masks["cold"] = cold
        masks["warm"] = ~cold
    popularity = np.asarray(item_popularity)[targets]
    low, mid = popularity_cuts(popularity)
    masks["pop_low"] = popularity <= low
    masks["pop_mid"] = (popularity > low) & (popularity <= mid)
    masks["pop_high"] = popularity > mid
    return masks


def popularity_cuts(popularity: np.ndarray) -> tuple[float, float]:
    """Upper popularity of the low and middle terciles of cases.

    Cases with equal popularity always share a group, so a target item never straddles two
    slices. The first cut is the popularity value that leaves the number of cases at or below it
    closest to n/3; the second splits the cases above the first cut into two halves the same way.
    low = popularity <= first cut, mid = up to the second, high = above it. Groups are therefore
    equal up to the size of a tied block at each cut (e.g. many cold targets at popularity 0 all
    fall in ``pop_low``, and the other cases are still split evenly between mid and high).
    """
    popularity = np.asarray(popularity)
    if len(popularity) == 0:
        return 0.0, 0.0
    low = _balanced_cut(popularity, 1 / 3)
    rest = popularity[popularity > low]
    mid = _balanced_cut(rest, 1 / 2) if len(rest) else low
    return float(low), float(mid)


def _balanced_cut(values: np.ndarray, share: float) -> float:
    """The value v whose count of ``values <= v`` is closest to ``share`` of them."""
    distinct, counts = np.unique(values, return_counts=True)
    below = np.cumsum(counts)
    return distinct[np.argmin(np.abs(below - share * len(values)))]
