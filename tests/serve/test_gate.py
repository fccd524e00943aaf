"""The retraining gate: the window, the cases, scoring a grown catalog, and the decision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopaug.data.sequences import Sequences
from shopaug.models import make_model
from shopaug.models.base import TrainData
from shopaug.serve.bundle import Bundle, RunLayout
from shopaug.serve.feedback import FeedbackLog, LogRecord
from shopaug.serve.gate import (
    CatalogScorer,
    GateConfig,
    GateDecision,
    decide,
    gate_log,
    window_cases,
    window_start,
)
from shopaug.serve.retrain import retrain_gated


def test_the_window_is_the_most_recent_share_of_the_logged_events() -> None:
    assert window_start(100, 110, 0.5) == 105
    assert window_start(100, 101, 0.5) == 100  # one logged event: it is the window
    assert window_start(100, 100, 0.5) == 100  # nothing logged: an empty window


def test_each_window_event_is_a_case_from_the_users_earlier_events() -> None:
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"]})
    events = pd.DataFrame(
        {"user_id": ["u", "v", "u", "u", "v"], "item_id": ["a", "b", "c", "d", "a"]}
    )
    cases = window_cases(items, events, start=3)
    assert cases.targets.tolist() == [3, 0]
    assert cases.inputs.row(0).tolist() == [0, 2] and cases.inputs.row(1).tolist() == [1]
    assert list(cases.inputs.users) == ["u", "v"] and (cases.user_index == -1).all()


def test_items_a_version_never_saw_rank_last_and_leave_its_histories() -> None:
    train = Sequences.from_lists(["u", "v"], [[0, 1, 2], [1, 2, 0]])
    markov = make_model("markov", order=1).fit(TrainData(train, 3))
    scorer = CatalogScorer(markov, np.zeros((5, 4), dtype=np.float32))
    histories = Sequences.from_lists(["u"], [[0, 4]])
    scores = scorer.score(histories)
    assert scores.shape == (1, 5) and np.isneginf(scores[0, 3:]).all()
    expected = markov.score(Sequences.from_lists(["u"], [[0]]))
    np.testing.assert_allclose(scores[0, :3], expected[0])


def measured(diff: float, low: float, high: float) -> dict:
    return {
        "current_score": 0.2,
        "candidate_score": 0.2 + diff,
        "mean_diff": diff,
        "ci": (low, high),
        "p_value": 0.01,
    }


BASE = {
    "current_version": 1,
    "metric": "ndcg@10",
    "cases": 40,
    "window_events": 40,
    "logged_events": 80,
}


@pytest.mark.parametrize(
    ("diff", "low", "high", "decision"),
    [
        (0.05, 0.01, 0.09, "swap"),  # better
        (-0.01, -0.04, 0.02, "swap"),  # not measurably worse
        (-0.05, -0.09, -0.01, "keep"),  # measurably worse
    ],
)
def test_the_candidate_swaps_in_unless_its_ci_is_below_zero(diff, low, high, decision) -> None:
    result = decide(measured(diff, low, high), BASE)
    assert result.decision == decision and result.swaps == (decision == "swap")
    assert f"{diff:+.4f}" in result.reason


def log_events(layout: RunLayout, n: int, seed: int = 0) -> None:
    bundle = Bundle.load(layout.version_dir(layout.current()))
    rng = np.random.default_rng(seed)
    users = bundle.events["user_id"].unique()
    items = bundle.items["item_id"].tolist()
    FeedbackLog(layout.log_path).append(
        [
            LogRecord(
                "event", {"user_id": str(rng.choice(users)), "item_id": str(rng.choice(items))}
            )
            for _ in range(n)
        ]
    )


def test_too_small_a_window_keeps_the_current_version(service_dir: Path) -> None:
    layout = RunLayout(service_dir)
    log_events(layout, 10)
    outcome = retrain_gated(service_dir, GateConfig(window=0.5, min_cases=20))
    assert outcome.path is None and outcome.gate.decision == "no-window"
    assert "5 events in the feedback window" in outcome.gate.reason
    assert layout.versions() == [1] and gate_log(service_dir)[-1]["decision"] == "no-window"


def test_a_judged_retrain_records_the_decision_in_the_version(service_dir: Path) -> None:
    layout = RunLayout(service_dir)
    log_events(layout, 60)
    outcome = retrain_gated(service_dir, GateConfig(window=0.5, min_cases=20, n_resamples=200))
    decision = outcome.gate
    assert decision.cases == 30 and decision.logged_events == 60
    low, high = decision.ci
    assert low <= decision.mean_diff <= high
    assert decision.mean_diff == pytest.approx(decision.candidate_score - decision.current_score)
    if decision.swaps:
        manifest = Bundle.load(outcome.path).manifest
        assert GateDecision.model_validate(manifest.gate) == decision
        assert layout.current() == 2
    else:
        assert outcome.path is None and layout.current() == 1
    assert GateDecision.model_validate(gate_log(service_dir)[-1]) == decision
