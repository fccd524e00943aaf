"""Scoring one history per request, without redoing work that only changes with the catalog.

``SequentialRecommender.score`` is built for evaluation: it scores thousands of histories per call,
so recomputing every item vector first (for the content model, the text projection of the whole
catalog: most of the cost) is negligible there. A service scores one history per request, where
that recomputation is nearly all the time. :class:`HistoryScorer` keeps the item vectors of a
sequence model between requests and drops them when the catalog changes; other models are called
as they are.
"""

from __future__ import annotations

import numpy as np
import torch

from shopaug.data.sequences import Sequences
from shopaug.models.base import Recommender
from shopaug.models.sasrec import SequentialRecommender, history_matrix


class HistoryScorer:
    """``score(history)`` -> float32 scores of the model's items for one history."""

    def __init__(self, model: Recommender) -> None:
        self.model = model
        self._items: torch.Tensor | None = None

    def invalidate(self) -> None:
        """Call after the model's items changed (added, or their text replaced)."""
        self._items = None

    def score(self, history: list[int]) -> np.ndarray:
        row = Sequences.from_lists(["history"], [history])
        if not isinstance(self.model, SequentialRecommender):
            return self.model.score(row)[0]
        net = self.model.net_
        with torch.no_grad():
            if self._items is None:
                net.eval()  # walks every submodule: once per catalog change, not per request
                self._items = net.item_vectors()
            device = self._items.device
            inputs = torch.as_tensor(history_matrix(row, self.model.max_len), device=device)
            last = net.encode(inputs, self._items)[:, -1]
            return net.logits(last, self._items)[0].cpu().numpy()
