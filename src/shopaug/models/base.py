"""The one interface every recommender follows, in the manner of scikit-learn estimators.

Hyper-parameters are declared once, as the class's ``Params`` schema
(:mod:`shopaug.models.params`); ``__init__`` validates keyword arguments against it and stores
each as a plain attribute, and ``get_params`` reads them back in the schema's order. ``fit``
learns from a :class:`TrainData`; ``score`` returns a dense (histories x catalog) matrix that
the evaluator ranks; ``recommend`` is ``score`` plus exclusion of seen items and a top-k.
Per-event weights ride on ``TrainData.sequences.weights`` so generated samples can count less
than real ones.
"""

from __future__ import annotations

import inspect
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from shopaug.data.sequences import Sequences
from shopaug.data.splits import EvalCases
from shopaug.models.params import ModelParams, validate_params


@dataclass
class ItemSide:
    """What is known of every item besides its events: text, category, encoder embeddings, and
    the catalog's fields (title, brand, categories, description; row i is item i), which the LLM
    strategies put into prompts."""

    texts: list[str] | None = None
    categories: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    catalog: pd.DataFrame | None = None


@dataclass
class TrainData:
    """What a model may learn from: training sequences (weighted) and item side information.

    ``user_index`` maps each training row to the dataset's user table so that models with user
    factors (ALS, BPR) can score a known user later; ``valid`` is for early stopping only.
    ``n_real_rows`` marks augmented data: rows from that index on are generated (``None``: all
    rows are real), so a model can keep what needs real evidence apart from what samples teach.
    """

    sequences: Sequences
    n_items: int
    user_index: np.ndarray | None = None
    n_users: int | None = None
    items: ItemSide | None = None
    valid: EvalCases | None = None
    n_real_rows: int | None = None

    @property
    def real_sequences(self) -> Sequences:
        """The real training rows only (all of them when nothing was generated)."""
        if self.n_real_rows is None:
            return self.sequences
        return self.sequences.select_rows(np.arange(self.n_real_rows))

    def __post_init__(self) -> None:
        if self.user_index is None:
            self.user_index = np.arange(len(self.sequences))
        if self.n_users is None:
            self.n_users = int(self.user_index.max()) + 1 if len(self.user_index) else 0
        if len(self.sequences.items) and self.sequences.items.max() >= self.n_items:
            raise ValueError(
                f"item index {int(self.sequences.items.max())} is outside the catalog of "
                f"{self.n_items} items"
            )


class KnowsItemsByText(ABC):
    """A capability a model declares by inheriting it: it ranks items from their text
    embedding, so a catalog change reaches it without refitting (new items become rankable at
    once, changed texts count at once).

    Serving asks ``isinstance(model, KnowsItemsByText)``; a model that does not declare it ranks
    only the items it was fit on until the next retrain. Declared, not probed by method name, so
    a helper method that happens to be called ``add_items`` changes nothing.
    """

    @abstractmethod
    def add_items(self, embeddings: np.ndarray) -> np.ndarray:
        """Append items known by their text embedding alone; returns their new indices."""

    @abstractmethod
    def set_item_texts(self, indices: np.ndarray, embeddings: np.ndarray) -> None:
        """Replace the text embeddings of existing items."""


#: Called after each validation of an early-stopped fit with ``(epoch, valid NDCG@10)``; it may
#: raise to end the fit there (a tuner stopping a trial that is already behind).
ValidationHook = Callable[[int, float], None]


class EarlyStopping(ABC):
    """A capability a model declares by inheriting it: ``fit`` validates on ``TrainData.valid``
    as it trains, keeps the best epoch's weights, and sets ``best_score_`` (valid NDCG@10),
    ``best_epoch_`` and ``history_`` (one record per epoch: ``epoch``, ``loss`` and, on the
    epochs it validated, ``valid_ndcg10``): the training curve a report plots.

    Those two are the only figures a plan or a hyper-parameter may be chosen on, and a serving
    refit on every event (no validation left) reuses ``best_epoch_`` as its epoch count.
    ``on_validation`` lets a tuner watch the curve and stop a poor trial early.
    """

    best_score_: float
    best_epoch_: int
    history_: list[dict[str, float]]

    @abstractmethod
    def fit(self, data: TrainData, on_validation: ValidationHook | None = None) -> Self:
        """Fit with early stopping on ``data.valid``; ``on_validation`` sees every validation."""


class Recommender:
    """Base class: subclasses declare ``Params`` and implement ``fit`` and ``score``; the rest
    is shared."""

    name: ClassVar[str] = "base"
    #: The hyper-parameter schema: the one place names, types, ranges and defaults live.
    Params: ClassVar[type[ModelParams]] = ModelParams
    #: True when ``score`` gives non-negative masses proportional to a probability (a Markov
    #: chain), False for logits; a blend turns either into a distribution before mixing.
    scores_are_probabilities: ClassVar[bool] = False

    n_items_: int

    def __init__(self, **params: Any) -> None:
        """Validate ``params`` against :attr:`Params` and set every parameter, given or default,
        as an attribute; a bad one raises :class:`~shopaug.models.params.ParameterError`."""
        checked = validate_params(self.Params, params, self.name)
        for key in self.Params.model_fields:
            setattr(self, key, getattr(checked, key))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give each model the signature of its schema, so ``help()``, ``inspect`` and editors
        show the real keyword arguments instead of ``**params``."""
        super().__init_subclass__(**kwargs)
        cls.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=field.default,
                    annotation=field.annotation,
                )
                for name, field in cls.Params.model_fields.items()
            ]
        )

    def fit(self, data: TrainData) -> Self:
        raise NotImplementedError

    def score(self, histories: Sequences, user_index: np.ndarray | None = None) -> np.ndarray:
        """Scores of every catalog item for each history row: float32 of shape (rows, n_items).

        ``user_index`` (the dataset's user row of each history, or -1 for an unknown user) lets
        models with learned user factors use them; sequence models ignore it.
        """
        raise NotImplementedError

    def recommend(
        self,
        histories: Sequences,
        k: int = 10,
        exclude_seen: bool = True,
        user_index: np.ndarray | None = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and their scores per row, best first, in batches of rows."""
        self._check_fitted()
        k = min(k, self.n_items_)
        items = np.empty((len(histories), k), dtype=np.int64)
        scores = np.empty((len(histories), k), dtype=np.float32)
        for start in range(0, len(histories), batch_size):
            rows = np.arange(start, min(start + batch_size, len(histories)))
            batch = histories.select_rows(rows)
            users = None if user_index is None else user_index[rows]
            s = self.score(batch, users).astype(np.float32, copy=True)
            if exclude_seen:
                mask_seen(s, batch)
            top = top_k(s, k)
            items[rows] = top
            scores[rows] = np.take_along_axis(s, top, axis=1)
        return items, scores

    @classmethod
    def refit_params(
        cls, params: dict[str, Any], best_epoch: int | None, choices: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """``params`` for a refit on every event, which has no validation left to choose on:
        what the validated fits chose (``best_epoch``, the median over seeds, and each seed's
        :meth:`validation_choices`) becomes fixed parameters. An early-stopped model trains the
        epochs its validation peaked at, the usual refit once the epoch count is chosen."""
        if best_epoch and issubclass(cls, EarlyStopping):
            return {**params, "epochs": int(best_epoch)}
        return params

    def validation_choices(self) -> dict[str, Any]:
        """What the fit chose on the validation cases beyond the epoch (a blend's weights), for
        the results JSON; empty for models that choose nothing there."""
        return {}

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters declared in :attr:`Params`, with this model's values."""
        return {key: getattr(self, key) for key in self.Params.model_fields}

    def save(self, path: str | Path) -> None:
        """Pickle the fitted model; subclasses with tensors override to save them portably."""
        self._check_fitted()
        with Path(path).open("wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        with Path(path).open("rb") as f:
            model = pickle.load(f)
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def mask_seen(scores: np.ndarray, histories: Sequences) -> None:
    """Set the score of every item in a row's history to -inf, in place."""
    scores[histories.row_ids(), histories.items] = -np.inf


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores per row, best first; ties go to the lower item index."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)
