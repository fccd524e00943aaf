"""Stage 3: recommenders behind one interface (:class:`Recommender`) and a registry by name.

The CLI, configs and benchmarks name models by the strings of :data:`MODELS`; adding a model is one
entry there (its key should equal the class's ``name``).
"""

from __future__ import annotations

from typing import Any

from shopaug.models.base import ItemSide, Recommender, TrainData
from shopaug.models.content import ContentSASRec
from shopaug.models.item_knn import ItemKNN
from shopaug.models.markov import MarkovChain
from shopaug.models.matrix_factorization import ALS, BPR
from shopaug.models.popularity import CategoryPopularity, Popularity
from shopaug.models.sasrec import SASRec
from shopaug.registry import build

MODELS: dict[str, type[Recommender]] = {
    "pop": Popularity,
    "pop-category": CategoryPopularity,
    "itemknn": ItemKNN,
    "markov": MarkovChain,
    "als": ALS,
    "bpr": BPR,
    "sasrec": SASRec,
    "content": ContentSASRec,
}


def make_model(name: str, **params: Any) -> Recommender:
    """A new, unfitted model of the registered ``name`` with the given hyper-parameters."""
    return build(MODELS, "models", name, **params)


__all__ = [
    "ALS",
    "BPR",
    "MODELS",
    "CategoryPopularity",
    "ContentSASRec",
    "ItemKNN",
    "ItemSide",
    "MarkovChain",
    "Popularity",
    "Recommender",
    "SASRec",
    "TrainData",
    "make_model",
]
