"""Hard negatives: items close to a positive in text space that the user did not take.

Random negatives are too easy to teach a ranker the fine distinctions of a catalog; the nearest
items in embedding space are hard. Two kinds of near items are *false* negatives and are kept out:
items the user did interact with (anywhere in their training row), and near-duplicates of the
positive (the same product listed twice, a colour variant), recognised by a similarity threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shopaug.augment.context import AugmentContext


@dataclass(frozen=True)
class HardNegatives:
    """Triples (training row, positive item, negative item) with the negative's similarity."""

    row: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    score: np.ndarray
    generator: str

    def __len__(self) -> int:
        return len(self.row)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "row": self.row,
                "positive": self.positive,
                "negative": self.negative,
                "score": self.score,
                "origin": "hard-negatives",
                "generator": self.generator,
            }
        )


class HardNegativeMiner(BaseModel):
    """For every training event, the ``per_positive`` nearest items that are safe negatives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = "hard-negatives"
    per_positive: int = Field(3, ge=1, le=100)
    skip_top: int = Field(0, ge=0, description="Skip this many nearest candidates (too close).")
    duplicate_threshold: float = Field(
        0.95, gt=-1, le=1, description="Candidates this similar to the positive are duplicates."
    )

    def mine(self, context: AugmentContext) -> HardNegatives:
        train = context.train
        context.require_embeddings(self.name)
        table = context.text_neighbours()
        candidates = table.items[train.items, self.skip_top :]
        similarity = table.scores[train.items, self.skip_top :]
        row = np.repeat(train.row_ids()[:, None], candidates.shape[1], axis=1)
        seen_keys = np.unique(train.row_ids() * context.n_items + train.items)
        interacted = np.isin(row * context.n_items + candidates, seen_keys)
        ok = (candidates >= 0) & ~interacted & (similarity < self.duplicate_threshold)
        rank = np.cumsum(ok, axis=1) - 1
        ok &= rank < self.per_positive
        event = np.repeat(np.arange(train.n_events)[:, None], candidates.shape[1], axis=1)[ok]
        params = ", ".join(f"{k}={v}" for k, v in self.model_dump().items())
        return HardNegatives(
            row=row[ok],
            positive=train.items[event],
            negative=candidates[ok],
            score=similarity[ok].astype(np.float32),
            generator=f"{self.name}({params})",
        )
