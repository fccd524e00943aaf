"""A blend of recommenders whose mixing weights are chosen on validation.

The tuned Markov chain and the sequence models are right about different users: the chain is
sharp where a transition has been seen often, the content-aware SASRec generalises through item
text and longer histories. Neither score scale means anything to the other (transition
probabilities against softmax logits), so each member's scores are first made a distribution over
the catalog, ``log_softmax`` of its logits, or the normalised row of a model whose scores are
probabilities (:attr:`Recommender.scores_are_probabilities`). Members then join one at a time:

- ``mixture``: ``(1 - a) * P_blend + a * P_member`` (a member speaks where the others are unsure);
- ``product``: ``(1 - a) * log P_blend + a * log P_member`` (a geometric mean: both must agree).

For each member after the first, the combination and ``a`` (a grid over [0, 1]) are the ones with
the best NDCG@10 on ``TrainData.valid``, the validation cases, the only figure a
hyper-parameter may be chosen on; ``a = 0`` keeps the member only for the items the others have
no evidence on (below). So the blend's validation score is never below its first member's with
those items added, though it can be below the first member's alone (the added items compete
with validation targets, which are never such items). Fixed ``weights`` skip the search (a
refit with no validation left repeats the chosen ones).

A member that knows items only by their events (everything but a :class:`KnowsItemsByText`
model) has no evidence on an item absent from the training rows: it abstains there, and the
item keeps the other side's log-probability. Without that a chain's zero for a cold item would
sink it in a geometric mean (and halve it in a mixture), and validation, whose targets are all
items seen in training, would never notice: on protocol C the blend ranked no cold target at all.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from scipy.special import log_softmax, logsumexp

from shopaug.data.sequences import Sequences
from shopaug.data.splits import EvalCases
from shopaug.models.base import (
    EarlyStopping,
    KnowsItemsByText,
    Recommender,
    TrainData,
    ValidationHook,
)
from shopaug.models.params import ModelParams, check_params
from shopaug.models.ranking import rank_metrics, rank_targets

Combine = Literal["mixture", "product"]
#: Floor of a probability before its log: an item a chain gives no mass keeps a finite score.
LOG_FLOOR = -69.0
SCORE_BATCH = 512


class BlendParams(ModelParams):
    models: list[str] = Field(
        default_factory=lambda: ["markov", "content"],
        min_length=2,
        description="Members, in the order they join (registered names, each once).",
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Hyper-parameters of the members, by name."
    )
    weights: list[float] | None = Field(
        None, description="Weight a of each member after the first (null: chosen on validation)."
    )
    combine: Literal["auto", "mixture", "product"] | list[Combine] = Field(
        "auto",
        description="How members join (auto: the better on validation, per member; "
        "with fixed weights one value or one per member after the first).",
    )
    grid: int = Field(11, ge=2, description="Weights tried per member, evenly over [0, 1].")
    seed: int = Field(0, description="Training seed of the members that take one.")

    @field_validator("models")
    @classmethod
    def _registered_once(cls, models: list[str]) -> list[str]:
        from shopaug.models import MODELS

        for name in models:
            if name not in MODELS or name == Blend.name:
                known = ", ".join(n for n in MODELS if n != Blend.name)
                raise ValueError(f"member {name!r} is not a model to blend; known: {known}")
        if len(set(models)) < len(models):
            raise ValueError(f"each member once: {models}")
        return models

    @model_validator(mode="after")
    def _member_params_and_weights(self) -> BlendParams:
        from shopaug.models import model_class

        for name, given in self.params.items():
            if name not in self.models:
                raise ValueError(
                    f"params for {name!r}, which is not among the members {self.models}"
                )
            check_params(model_class(name).Params, given, f"blend.params.{name}")
        if self.weights is not None:
            if len(self.weights) != len(self.models) - 1:
                raise ValueError(
                    f"weights: one per member after the first ({len(self.models) - 1}), "
                    f"got {len(self.weights)}"
                )
            if any(not 0 <= w <= 1 for w in self.weights):
                raise ValueError(f"weights must lie in [0, 1], got {self.weights}")
            if self.combine == "auto":
                raise ValueError("fixed weights need a fixed combine: mixture or product")
        if isinstance(self.combine, list):
            if self.weights is None:
                raise ValueError("a list of combines goes with fixed weights")
            if len(self.combine) != len(self.weights):
                raise ValueError(
                    f"combine: one per member after the first ({len(self.weights)}), "
                    f"got {len(self.combine)}"
                )
        return self


class Blend(Recommender, EarlyStopping):
    """Members fit on the same rows; mixing weights chosen on validation (see the module doc).

    Fitted attributes: ``members_`` (the fitted models), ``weights_`` and ``combines_`` (one per
    member after the first), ``choices_`` (what validation saw: each member's own NDCG@10, the
    grid's scores and the pick), and ``best_score_`` (the blend's validation NDCG@10).

    A blend early-stops through its members: ``on_validation`` sees each early-stopped member's
    epochs as it trains (a long fit shows progress, a tuner can stop a trial that is behind),
    and ``history_`` / ``best_epoch_`` are those of the first early-stopped member (empty and 0
    without one).
    """

    name: ClassVar[str] = "blend"
    Params: ClassVar[type[ModelParams]] = BlendParams

    def fit(self, data: TrainData, on_validation: ValidationHook | None = None) -> Self:
        if self.weights is None and (data.valid is None or len(data.valid) == 0):
            raise ValueError(
                "blend chooses its weights on validation cases and there are none; "
                "give fixed weights (and combine) to fit without them"
            )
        self.history_, self.best_epoch_ = [], 0
        self.seen_ = np.bincount(data.sequences.items, minlength=data.n_items) > 0
        self.members_ = [self._fit_member(name, data, on_validation) for name in self.models]
        stopped = [m for m in self.members_ if isinstance(m, EarlyStopping)]
        if stopped:
            self.history_, self.best_epoch_ = stopped[0].history_, stopped[0].best_epoch_
        self.n_items_ = data.n_items
        if self.weights is not None:
            self.weights_ = list(self.weights)
            given = self.combine
            self.combines_ = (
                list(given) if isinstance(given, list) else [given] * len(self.weights_)
            )
            self.choices_: dict[str, Any] = {"chosen_on": "given", "weights": self.weights_}
            self.best_score_ = float("nan")
        else:
            self._choose(data.valid)
        self.choices_["member_best_epoch"] = {
            name: member.best_epoch_
            for name, member in zip(self.models, self.members_, strict=True)
            if isinstance(member, EarlyStopping)
        }
        return self

    @classmethod
    def refit_params(
        cls, params: dict[str, Any], best_epoch: int | None, choices: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The weights and combines validation chose fixed: per member after the first, the
        commoner combine over seeds and the median weight of the seeds that chose it (a
        mixture's weight and a geometric mean's are not on one scale); each early-stopped
        member's epochs its median best epoch."""
        from shopaug.models import model_class

        chosen = [c for c in choices if c.get("chosen_on") == "validation"]
        if not chosen:
            return params
        weights, combines = [], []
        for k in range(len(chosen[0]["weights"])):
            how = Counter(c["combines"][k] for c in chosen).most_common(1)[0][0]
            agreeing = [c["weights"][k] for c in chosen if c["combines"][k] == how]
            weights.append(float(np.median(agreeing)))
            combines.append(how)
        members = {name: dict(p) for name, p in params.get("params", {}).items()}
        for name in cls(**params).models:
            epochs = [
                c["member_best_epoch"][name]
                for c in chosen
                if name in c.get("member_best_epoch", {})
            ]
            if epochs:
                best = int(np.median(epochs))
                members[name] = model_class(name).refit_params(members.get(name, {}), best, [])
        return {**params, "weights": weights, "combine": combines, "params": members}

    def _member(self, name: str) -> Recommender:
        from shopaug.models import make_model, model_class

        params = dict(self.params.get(name, {}))
        if "seed" in model_class(name).Params.model_fields:
            params.setdefault("seed", self.seed)
        return make_model(name, **params)

    def _fit_member(
        self, name: str, data: TrainData, on_validation: ValidationHook | None
    ) -> Recommender:
        member = self._member(name)
        if on_validation is None or not isinstance(member, EarlyStopping):
            return member.fit(data)

        def watch(epoch: int, score: float) -> None:
            # The caller's hook reads the curve so far (loss of the last epoch) off the blend.
            self.history_ = member.history_
            on_validation(epoch, score)

        return member.fit(data, on_validation=watch)

    # -- choosing on validation -----------------------------------------------------------------

    def _choose(self, valid: EvalCases) -> None:
        """Greedy: each member joins the blend of those before it with the (combine, a) of best
        validation NDCG@10; the grid's scores are kept in ``choices_``."""
        grid = np.linspace(0.0, 1.0, self.grid)
        combines: list[Combine] = (
            ["mixture", "product"] if self.combine == "auto" else [self.combine]  # type: ignore[list-item]
        )
        self.weights_, self.combines_ = [], []
        own = [self._valid_ndcg(valid, [m], [], []) for m in self.members_]
        steps = []
        best = own[0]
        for k in range(1, len(self.members_)):
            members = self.members_[: k + 1]
            table = self._valid_ndcg_grid(valid, members, combines, grid)
            best, how, a = max(
                ((score, how, float(a)) for how in combines for a, score in zip(grid, table[how])),
                key=lambda t: t[0],
            )
            self.weights_.append(a)
            self.combines_.append(how)
            steps.append({"member": self.models[k], "combine": how, "weight": a, "grid": table})
        self.best_score_ = float(best)
        self.choices_ = {
            "chosen_on": "validation",
            "member_valid_ndcg@10": dict(zip(self.models, own)),
            "valid_ndcg@10": self.best_score_,
            "weights": self.weights_,
            "combines": self.combines_,
            "grid_weights": grid.tolist(),
            "steps": steps,
        }

    def _valid_ndcg_grid(
        self,
        valid: EvalCases,
        members: list[Recommender],
        combines: list[Combine],
        grid: np.ndarray,
    ) -> dict[str, list[float]]:
        """Validation NDCG@10 of the last member joining the rest, per combine and weight."""
        total = {how: np.zeros(len(grid)) for how in combines}
        for batch in _batches(valid):
            prefix = self._blend_log_probs(
                members[:-1], self.weights_, self.combines_, batch.inputs, batch.user_index
            )
            last = self._member_log_probs(members[-1], batch.inputs, batch.user_index)
            for how in combines:
                for i, a in enumerate(grid):
                    total[how][i] += _ndcg_sum(join(prefix, last, float(a), how), batch)
        return {how: (sums / len(valid)).tolist() for how, sums in total.items()}

    def _valid_ndcg(
        self,
        valid: EvalCases,
        members: list[Recommender],
        weights: list[float],
        combines: list[str],
    ) -> float:
        total = 0.0
        for batch in _batches(valid):
            total += _ndcg_sum(
                self._blend_log_probs(members, weights, combines, batch.inputs, batch.user_index),
                batch,
            )
        return total / len(valid)

    # -- scoring ----------------------------------------------------------------------------------

    def _member_log_probs(
        self, member: Recommender, histories: Sequences, user_index: np.ndarray | None
    ) -> np.ndarray:
        """The member's log-probabilities, NaN (abstains) on items it has no evidence on."""
        out = member_log_probs(member, histories, user_index)
        if not isinstance(member, KnowsItemsByText):
            out[:, ~self.seen_] = np.nan
        return out

    def _blend_log_probs(
        self,
        members: list[Recommender],
        weights: list[float],
        combines: list[str],
        histories: Sequences,
        user_index: np.ndarray | None,
    ) -> np.ndarray:
        out = self._member_log_probs(members[0], histories, user_index)
        for member, a, how in zip(members[1:], weights, combines, strict=True):
            out = join(out, self._member_log_probs(member, histories, user_index), a, how)
        return out

    def score(self, histories: Sequences, user_index: np.ndarray | None = None) -> np.ndarray:
        """The blend's log-probability of every item (items no member knows: ``LOG_FLOOR``)."""
        self._check_fitted()
        out = self._blend_log_probs(
            self.members_, self.weights_, self.combines_, histories, user_index
        )
        return _floored(out).astype(np.float32)

    def validation_choices(self) -> dict[str, Any]:
        return self.choices_

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """One torch file: each member saved by its own ``save`` (bytes), and the weights."""
        self._check_fitted()
        blobs = [_member_bytes(member) for member in self.members_]
        torch.save(
            {
                "class": type(self).__name__,
                "params": self.get_params(),
                "members": blobs,
                "weights": self.weights_,
                "combines": self.combines_,
                "n_items": self.n_items_,
                "seen": torch.from_numpy(self.seen_),
                "best_score": self.best_score_,
                "choices": self.choices_,
                "history": self.history_,
                "best_epoch": self.best_epoch_,
            },
            Path(path),
        )

    @classmethod
    def load(cls, path: str | Path) -> Self:
        from shopaug.models import model_class

        saved = torch.load(Path(path), map_location="cpu", weights_only=True)
        if saved.get("class") != cls.__name__:
            raise TypeError(f"{path} holds a {saved.get('class')}, not a {cls.__name__}")
        model = cls(**saved["params"])
        model.members_ = [
            _member_from_bytes(model_class(name), blob)
            for name, blob in zip(model.models, saved["members"], strict=True)
        ]
        model.weights_, model.combines_ = saved["weights"], saved["combines"]
        model.n_items_, model.best_score_ = saved["n_items"], saved["best_score"]
        model.seen_ = saved["seen"].numpy()
        model.choices_ = saved["choices"]
        model.history_, model.best_epoch_ = saved["history"], saved["best_epoch"]
        return model


def member_log_probs(
    model: Recommender, histories: Sequences, user_index: np.ndarray | None
) -> np.ndarray:
    """A member's scores as log-probabilities over the catalog (float64), rows summing to 1."""
    scores = np.asarray(model.score(histories, user_index), dtype=np.float64)
    if model.scores_are_probabilities:
        total = scores.sum(axis=1, keepdims=True)
        probs = np.divide(scores, total, out=np.zeros_like(scores), where=total > 0)
        with np.errstate(divide="ignore"):
            return np.maximum(np.log(probs), LOG_FLOOR)
    return log_softmax(scores, axis=1)


def join(blend: np.ndarray, member: np.ndarray, a: float, how: str) -> np.ndarray:
    """``member`` joining ``blend`` with weight ``a`` (both log-probabilities, NaN where a side
    abstains: the item then takes the other side's value, whatever ``a``); rows renormalised.

    So ``a = 0`` keeps the blend where it has evidence and still lets the member rank the items
    it alone knows (cold items, which validation never sees as targets and so cannot weigh)."""
    with np.errstate(invalid="ignore"):
        if a <= 0:
            mixed = blend
        elif a >= 1:
            mixed = member
        elif how == "mixture":
            mixed = np.logaddexp(np.log1p(-a) + blend, np.log(a) + member)
        else:
            mixed = (1 - a) * blend + a * member
    mixed = np.where(np.isnan(blend), member, np.where(np.isnan(member), blend, mixed))
    known = np.where(np.isnan(mixed), -np.inf, mixed)
    return mixed - logsumexp(known, axis=1, keepdims=True)


def _floored(log_probs: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(log_probs), LOG_FLOOR, log_probs)


def _ndcg_sum(scores: np.ndarray, batch: EvalCases) -> float:
    ranks = rank_targets(_floored(scores), batch.targets, batch.inputs)
    return float(rank_metrics(ranks, (10,))["ndcg@10"].sum())


def _batches(cases: EvalCases) -> list[EvalCases]:
    return [
        cases.select(np.arange(start, min(start + SCORE_BATCH, len(cases))))
        for start in range(0, len(cases), SCORE_BATCH)
    ]


def _member_bytes(member: Recommender) -> bytes:
    """What the member's own ``save`` writes (a member knows best how to save its tensors)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "member"
        member.save(path)
        return path.read_bytes()


def _member_from_bytes(cls: type[Recommender], blob: bytes) -> Recommender:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "member"
        path.write_bytes(blob)
        return cls.load(path)
