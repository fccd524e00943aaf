"""Most-popular baselines: the floor every other recommender must clear.

Popularity is the weighted event count of each item in the training sequences, so a generated
event with weight 0.3 adds 0.3 to its item and a weight-0 event adds nothing. The per-category
variant first ranks the items of the categories a history mostly contains — a cheap stand-in for
"more of the same" — and breaks ties (and orders everything else) by overall popularity.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.stats import rankdata

from shopaug.data.sequences import Sequences
from shopaug.models.base import Recommender, TrainData
from shopaug.models.params import ModelParams


def item_popularity(sequences: Sequences, n_items: int) -> np.ndarray:
    """Weighted event count of every catalog item (float64, length ``n_items``)."""
    return np.bincount(sequences.items, weights=sequences.event_weights(), minlength=n_items)


class PopularityParams(ModelParams):
    by_category: bool = Field(
        False, description="Rank items of the history's main categories first."
    )


class Popularity(Recommender):
    """Score every item by its weighted training popularity, optionally category-first.

    With ``by_category`` the categories of a history are ranked by their weighted share of it;
    items of the most frequent category come first, then those of the second, and so on, and
    items of categories absent from the history (or with no category label) come last. Within
    each of these tiers items are ordered by overall popularity, which is also the whole ranking
    for an empty history.
    """

    name: ClassVar[str] = "pop"
    Params: ClassVar[type[ModelParams]] = PopularityParams

    def fit(self, data: TrainData) -> Self:
        popularity = item_popularity(data.sequences, data.n_items)
        # Scaled into [0, 1) so that in category mode an integer tier always outranks it.
        self.popularity_ = (popularity / (popularity.max(initial=0.0) + 1.0)).astype(np.float32)
        if self.by_category:
            self.item_category_, self.n_categories_ = _category_codes(data)
        self.n_items_ = data.n_items
        return self

    def score(self, histories: Sequences, user_index: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        scores = np.broadcast_to(self.popularity_, (len(histories), self.n_items_))
        if not self.by_category:
            return scores.copy()
        return scores + self._category_tiers(histories)

    def _category_tiers(self, histories: Sequences) -> np.ndarray:
        """(rows, n_items) tier of each item: 0 for categories not in the history, else the dense
        rank of its category's weighted count (the history's main category gets the top tier)."""
        codes = self.item_category_[histories.items]
        known = codes >= 0
        counts = sp.csr_matrix(
            (histories.event_weights()[known], (histories.row_ids()[known], codes[known])),
            shape=(len(histories), self.n_categories_ + 1),
        ).toarray()
        # The extra all-zero column makes 0 the lowest dense rank of every row, so categories
        # absent from a history get tier 0 even when the history covers every category.
        tiers = rankdata(counts, method="dense", axis=1) - 1.0
        item_tiers = np.zeros((len(histories), self.n_items_), dtype=np.float32)
        labelled = self.item_category_ >= 0
        item_tiers[:, labelled] = tiers[:, self.item_category_[labelled]]
        return item_tiers


def _category_codes(data: TrainData) -> tuple[np.ndarray, int]:
    """Integer code per item (-1 for an empty or missing label) and the number of categories."""
    categories = None if data.items is None else data.items.categories
    if categories is None:
        raise ValueError("Popularity(by_category=True) needs TrainData.items.categories")
    labels = np.asarray(categories, dtype=object)
    if len(labels) != data.n_items:
        raise ValueError(f"got {len(labels)} item categories for a catalog of {data.n_items}")
    missing = np.array([_is_missing(label) for label in labels], dtype=bool)
    uniques, codes = np.unique(labels[~missing].astype(str), return_inverse=True)
    item_category = np.full(data.n_items, -1, dtype=np.int64)
    item_category[~missing] = codes
    return item_category, len(uniques)


def _is_missing(label: object) -> bool:
    """None, NaN (pandas' missing value) and the empty string all mean "no category"."""
    return label is None or label == "" or (isinstance(label, float) and np.isnan(label))


class CategoryPopularityParams(PopularityParams):
    by_category: bool = Field(
        True, description="Rank items of the history's main categories first."
    )


class CategoryPopularity(Popularity):
    """:class:`Popularity` in per-category mode, so the registry can name it on its own."""

    name: ClassVar[str] = "pop-category"
    Params: ClassVar[type[ModelParams]] = CategoryPopularityParams
