"""``shopaug retrain --gate``: publish a retrained version only if it is not worse than the one
being served, judged on the most recent feedback.

The judgment is a time split of the feedback log. Its most recent part (the *window*: a share of
the events logged since the current version was trained) is held out. A candidate is fit the
same way as the next version (same model, parameters and augmentation plan) on everything
before the window, and both it and the current version rank every window event from the
user's history before it, over the whole catalog with seen items excluded, as in the
benchmark. Neither has seen a window event. Items the log added after the current version
was trained get no score from an ID-only model (they rank last); a model that knows items by
their text gets their text vectors, as the service gives them.

The candidate is kept unless its paired-bootstrap CI over the window events lies entirely
below zero, i.e. unless it is measurably worse. The version that is published is then refit on
every event, the window included. The decision, both scores and the CI go in that version's
manifest and in ``RUN_DIR/gate.jsonl``, and to MLflow when it is installed.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shopaug.data.sequences import Sequences
from shopaug.data.splits import EvalCases
from shopaug.evaluate.ranking import evaluate_model
from shopaug.evaluate.stats import compare_runs
from shopaug.models import KnowsItemsByText, Recommender

GATE_LOG = "gate.jsonl"


class GateConfig(BaseModel):
    """How the gate judges: the window, the metric, the bootstrap."""

    model_config = ConfigDict(extra="forbid")

    #: Share of the events logged since the current version that is held out (the most recent).
    window: float = Field(0.5, gt=0, lt=1)
    metric: str = "ndcg@10"
    #: Fewer window events than this cannot tell two versions apart: the gate refuses to judge.
    min_cases: int = Field(20, ge=1)
    n_resamples: int = Field(1000, ge=100)
    #: MLflow store of the decisions (default: ``sqlite:///RUN_DIR/mlflow.db``).
    tracking_uri: str | None = None


class GateDecision(BaseModel):
    """What the gate measured and decided; stored in the manifest and ``gate.jsonl``."""

    decision: str  # "swap", "keep" or "no-window"
    reason: str
    current_version: int
    metric: str
    cases: int
    window_events: int
    logged_events: int
    current_score: float | None = None
    candidate_score: float | None = None
    mean_diff: float | None = None
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def swaps(self) -> bool:
        return self.decision == "swap"


def window_start(n_old: int, n_events: int, share: float) -> int:
    """Row of the first held-out event: the last ``share`` of the rows after ``n_old``."""
    logged = n_events - n_old
    return n_events - math.ceil(share * logged) if logged else n_events


def window_cases(items: pd.DataFrame, events: pd.DataFrame, start: int) -> EvalCases:
    """One case per event from row ``start`` on: its item from the user's earlier events.

    ``events`` are in log order (time order within a user). ``user_index`` is -1 throughout:
    both versions judge a history as they would serve an unknown user, so a model with user
    factors is not favoured by having been fit on the user.
    """
    index = pd.Index(items["item_id"].astype(str))
    codes = index.get_indexer(events["item_id"].astype(str))
    users = events["user_id"].astype(str).to_numpy()
    by_user: dict[str, list[int]] = {}
    histories, targets, ids = [], [], []
    for row, (user, item) in enumerate(zip(users, codes, strict=True)):
        if row >= start:
            histories.append(list(by_user.get(user, [])))
            targets.append(int(item))
            ids.append(user)
        by_user.setdefault(user, []).append(int(item))
    inputs = Sequences.from_lists(ids, histories)
    return EvalCases(inputs, np.asarray(targets, dtype=np.int64), np.full(len(ids), -1))


class CatalogScorer(Recommender):
    """A served version scoring a catalog that has grown since it was fit.

    Items the model does not know score ``-inf`` (last) and are dropped from histories; a model
    that knows items by their text is first given the new items' vectors, as the service does
    when the log adds an item.
    """

    name = "catalog-scorer"

    def __init__(self, inner: Recommender, embeddings: np.ndarray) -> None:
        self.inner = inner
        self.n_items_ = len(embeddings)
        if isinstance(inner, KnowsItemsByText) and self.n_items_ > inner.n_items_:
            inner.add_items(np.asarray(embeddings[inner.n_items_ :], dtype=np.float32))

    def score(self, histories: Sequences, user_index: np.ndarray | None = None) -> np.ndarray:
        known = self.inner.n_items_
        visible = histories.select_events(histories.items < known)
        scores = np.full((len(histories), self.n_items_), -np.inf, dtype=np.float32)
        scores[:, :known] = self.inner.score(visible, user_index)[:, :known]
        return scores


def judge(
    current: Recommender,
    candidate: Recommender,
    cases: EvalCases,
    embeddings: np.ndarray,
    config: GateConfig,
) -> dict[str, Any]:
    """Both versions ranked on the window cases, and the paired bootstrap of the difference."""
    scorer = CatalogScorer(current, embeddings)
    k = int(config.metric.partition("@")[2] or 10)
    ks = tuple(sorted({10, k}))
    ours = evaluate_model(scorer, cases, ks=ks)
    theirs = evaluate_model(candidate, cases, ks=ks)
    result = compare_runs([theirs], [ours], config.metric, n_resamples=config.n_resamples)
    return {
        "current_score": ours.means()[config.metric],
        "candidate_score": theirs.means()[config.metric],
        **result.to_dict(),
    }


def decide(measured: dict[str, Any], base: dict[str, Any]) -> GateDecision:
    """Swap unless the candidate is measurably worse (its CI entirely below zero)."""
    low, high = measured["ci"]
    worse = high < 0
    reason = (
        f"candidate {measured['mean_diff']:+.4f} [{low:+.4f}, {high:+.4f}] on "
        f"{base['metric']}: " + ("measurably worse, current version kept" if worse else "not worse")
    )
    fields = {k: measured[k] for k in ("current_score", "candidate_score", "mean_diff", "p_value")}
    return GateDecision(
        decision="keep" if worse else "swap",
        reason=reason,
        ci=(low, high),
        **fields,
        **base,
    )


def record_decision(run_dir: Path, decision: GateDecision, config: GateConfig) -> None:
    """Append the decision to ``gate.jsonl`` and log it to MLflow (when installed)."""
    with (run_dir / GATE_LOG).open("a") as fh:
        fh.write(decision.model_dump_json() + "\n")
    try:
        from mlflow import MlflowClient
    except ImportError:
        return
    uri = config.tracking_uri or f"sqlite:///{run_dir.resolve() / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    name = "shopaug-retrain-gate"
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run = client.create_run(experiment_id, run_name=f"gate v{decision.current_version}")
    run_id = run.info.run_id
    for key in ("current_score", "candidate_score", "mean_diff", "p_value"):
        value = getattr(decision, key)
        if value is not None:
            client.log_metric(run_id, key, float(value))
    if decision.ci is not None:
        client.log_metric(run_id, "ci_low", decision.ci[0])
        client.log_metric(run_id, "ci_high", decision.ci[1])
    for key in ("decision", "metric", "cases", "window_events", "current_version"):
        client.log_param(run_id, key, getattr(decision, key))
    client.set_tag(run_id, "reason", decision.reason)
    client.set_terminated(run_id)


def gate_log(run_dir: Path) -> list[dict[str, Any]]:
    """Every decision so far, oldest first."""
    path = run_dir / GATE_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
