"""Stage 3: recommenders behind one interface (:class:`Recommender`) and a registry by name.

The CLI, configs and benchmarks name models by the strings of :data:`MODELS`; adding a model is one
entry there (its key should equal the class's ``name``). Each class declares its hyper-parameters
as a schema (``Params``, see :mod:`shopaug.models.params`); :func:`check_model_params` is how the
CLI and configs validate them before any work starts.
"""

from __future__ import annotations

from typing import Any

from shopaug.models.base import (
    EarlyStopping,
    ItemSide,
    KnowsItemsByText,
    Recommender,
    TrainData,
    ValidationHook,
)
from shopaug.models.blend import Blend
from shopaug.models.content import ContentSASRec
from shopaug.models.item_knn import ItemKNN
from shopaug.models.markov import MarkovChain
from shopaug.models.matrix_factorization import ALS, BPR
from shopaug.models.params import ModelParams, ParameterError, ParamSpec, check_params, param_specs
from shopaug.models.popularity import CategoryPopularity, Popularity
from shopaug.models.sasrec import SASRec

MODELS: dict[str, type[Recommender]] = {
    "pop": Popularity,
    "pop-category": CategoryPopularity,
    "itemknn": ItemKNN,
    "markov": MarkovChain,
    "als": ALS,
    "bpr": BPR,
    "sasrec": SASRec,
    "content": ContentSASRec,
    "blend": Blend,
}


def make_model(name: str, **params: Any) -> Recommender:
    """A new, unfitted model of the registered ``name`` with the given hyper-parameters."""
    return model_class(name)(**params)


def model_class(name: str) -> type[Recommender]:
    """The registered class of ``name``; an unknown name fails listing the known ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name]


def model_param_specs(name: str) -> list[ParamSpec]:
    """The parameters of model ``name`` as people read them (``shopaug models NAME``)."""
    return param_specs(model_class(name).Params)


def check_model_params(
    name: str, params: dict[str, Any], label: str | None = None
) -> dict[str, Any]:
    """``params`` of model ``name`` validated and coerced to their declared types, without
    building the model: what the CLI and configs call before data is loaded. A
    :class:`ParameterError` names ``label`` (default: ``name``), the parameter and what it takes.
    """
    return check_params(model_class(name).Params, params, label or name)


__all__ = [
    "ALS",
    "BPR",
    "MODELS",
    "Blend",
    "CategoryPopularity",
    "ContentSASRec",
    "EarlyStopping",
    "ItemKNN",
    "ItemSide",
    "KnowsItemsByText",
    "MarkovChain",
    "ModelParams",
    "ParamSpec",
    "ParameterError",
    "Popularity",
    "Recommender",
    "SASRec",
    "TrainData",
    "ValidationHook",
    "check_model_params",
    "make_model",
    "model_class",
    "model_param_specs",
]
