"""Matrix factorisation baselines (ALS, BPR), fitted by the ``implicit`` library.

Both learn a factor per training user and per item from the (user x item) matrix of weighted
events. A leave-one-out evaluation history holds one event more than the user's training row (the
validation target), and new users have no row at all, so by default the user factor is recomputed
from the history being scored ("fold-in"); ``fold_in=False`` uses the learned factor of a known
user instead.

``implicit`` starts its own threads; a multi-threaded BLAS underneath them oversubscribes the CPU
(implicit warns about it), so fitting and fold-in run with BLAS limited to one thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from shopaug.data.matrices import interaction_matrix
from shopaug.data.sequences import Sequences
from shopaug.models.base import Recommender, TrainData
from shopaug.models.params import ModelParams


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class _FactorizationParams(ModelParams):
    """What ALS and BPR share; each adds its own training parameters."""

    factors: int = Field(128, ge=1, description="Width of the user and item factors.")
    fold_in: bool = Field(
        True, description="Recompute the user factor from the scored history (else: learned)."
    )
    num_threads: int = Field(0, ge=0, description="implicit's threads (0: all cores).")
    random_state: int | None = Field(0, description="Seed of the initial factors (null: random).")


class ALSParams(_FactorizationParams):
    regularization: float = Field(
        10.0, ge=0, description="L2 penalty, weighed against confidences of about alpha."
    )
    alpha: float = Field(50.0, ge=0, description="Confidence 1 + alpha * event weight.")
    iterations: int = Field(15, ge=1, description="Alternating least-squares sweeps.")


class BPRParams(_FactorizationParams):
    learning_rate: float = Field(0.1, ge=0, description="SGD step size.")
    regularization: float = Field(0.01, ge=0, description="L2 penalty on the factors.")
    iterations: int = Field(300, ge=1, description="Passes over the training events.")


class _ImplicitFactorization(Recommender):
    """Shared fit/score of the ``implicit`` wrappers; subclasses build the estimator, turn event
    weights into its input values, and fold a history into a user factor."""

    def fit(self, data: TrainData) -> Self:
        user_items = self._input_values(interaction_matrix(data.sequences, data.n_items))
        with _single_threaded_blas():
            model = self._make_estimator()
            model.fit(user_items, show_progress=False)
        self.model_ = model
        self.user_rows_ = _user_rows(data.user_index, data.n_users)
        self.n_items_ = data.n_items
        return self

    def score(self, histories: Sequences, user_index: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        rows = self._known_rows(len(histories), user_index)
        users = np.empty((len(histories), self.model_.item_factors.shape[1]), dtype=np.float32)
        known = rows >= 0
        users[known] = self.model_.user_factors[rows[known]]
        if not known.all():
            unknown = np.flatnonzero(~known)
            history = interaction_matrix(histories.select_rows(unknown), self.n_items_)
            with _single_threaded_blas():
                users[unknown] = self._fold_in(self._input_values(history))
        return users @ self.model_.item_factors.T

    def _known_rows(self, n_rows: int, user_index: np.ndarray | None) -> np.ndarray:
        """Training row of each history's user, or -1 where the history must be folded in."""
        if self.fold_in or user_index is None:
            return np.full(n_rows, -1, dtype=np.int64)
        user_index = np.asarray(user_index, dtype=np.int64)
        inside = (user_index >= 0) & (user_index < len(self.user_rows_))
        return np.where(inside, self.user_rows_[np.where(inside, user_index, 0)], -1)

    def _make_estimator(self) -> Any:
        raise NotImplementedError

    def _input_values(self, weights: sp.csr_matrix) -> sp.csr_matrix:
        raise NotImplementedError

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError


class ALS(_ImplicitFactorization):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via ``implicit``.

    An item's summed event weight ``w`` for a user becomes the confidence ``1 + alpha * w`` of
    the paper (``implicit`` is given these confidences with its own ``alpha`` at 1), so a
    down-weighted generated event is still a weak positive, never weaker than an unobserved item.
    Fold-in solves the same regularised least-squares problem for the history's user factor with
    the item factors fixed (``implicit``'s ``recalculate_user``). The defaults were chosen on the
    validation cases of the Amazon Scientific data (protocol W); ``regularization`` is large
    because it is weighed against confidences of about ``alpha``, not against 0/1 entries.
    """

    name: ClassVar[str] = "als"
    Params: ClassVar[type[ModelParams]] = ALSParams

    def _make_estimator(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=1.0,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

    def _input_values(self, weights: sp.csr_matrix) -> sp.csr_matrix:
        confidence = weights.copy()
        confidence.data = 1.0 + self.alpha * confidence.data
        return confidence

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        return self.model_.recalculate_user(np.arange(user_items.shape[0]), user_items)


class BPR(_ImplicitFactorization):
    """Bayesian Personalised Ranking (Rendle et al. 2009) via ``implicit``.

    ``implicit``'s BPR treats every stored entry as a plain positive, so event weights only
    decide presence: items whose weights sum to zero are left out. Fold-in takes the weighted mean
    of the history's item factors as the user factor (the item-bias column of ``implicit``'s
    factors is matched by a constant 1 in the user factor, as in training), so an empty history
    ranks items by their learned bias. Training is Hogwild SGD: only ``num_threads=1`` gives
    results that repeat exactly for a given ``random_state``.
    """

    name: ClassVar[str] = "bpr"
    Params: ClassVar[type[ModelParams]] = BPRParams

    def _make_estimator(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

    def _input_values(self, weights: sp.csr_matrix) -> sp.csr_matrix:
        return weights

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        totals = np.asarray(user_items.sum(axis=1)).ravel()
        scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
        users = sp.diags(scale) @ user_items @ self.model_.item_factors
        users[:, -1] = 1.0  # the bias column: implicit keeps it at 1 for every trained user
        return users


def _user_rows(user_index: np.ndarray, n_users: int) -> np.ndarray:
    """Dataset user -> training row lookup (-1 for users without a training row)."""
    rows = np.full(max(n_users, int(user_index.max(initial=-1)) + 1), -1, dtype=np.int64)
    rows[user_index] = np.arange(len(user_index))
    return rows
