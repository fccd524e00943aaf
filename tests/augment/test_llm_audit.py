"""The judge audit: pairs known from training rows, P(yes) read from token probabilities, an
AUC that tells a judge that knows from one that guesses."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from shopaug.augment.llm_audit import (
    AuditConfig,
    JudgeAudit,
    answer_probability,
    auc,
    audit_pairs,
    best_threshold,
    verdict,
)
from shopaug.data.sequences import Sequences
from shopaug.llm import Completion, FakeGenerator, TokenLogprob

TOPICS = ("microscope", "pipette", "beaker", "caliper", "glove", "filament")
PER_TOPIC = 20


def shop(users: int = 120, seed: int = 0) -> tuple[Sequences, pd.DataFrame]:
    """Users who each buy within one topic; item i belongs to topic i // PER_TOPIC."""
    catalog = pd.DataFrame(
        {
            "title": [
                f"{TOPICS[i // PER_TOPIC]} model {i}" for i in range(len(TOPICS) * PER_TOPIC)
            ],
            "brand": "Acme",
            "categories": "",
            "description": "",
        }
    )
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(users):
        topic = int(rng.integers(len(TOPICS)))
        size = int(rng.integers(3, 7))
        rows.append((topic * PER_TOPIC + rng.choice(PER_TOPIC, size, replace=False)).tolist())
    return Sequences.from_lists(list(range(users)), rows), catalog


def topic_judge(messages, params) -> str:
    """Says yes when the new product's topic is the one of the shopper's history."""
    prompt = messages[-1].content
    history = re.findall(r"- (\w+) model", prompt)
    new = re.search(r"New product: (\w+) model", prompt).group(1)
    answer = "yes" if history and new == history[-1] else "no"
    return f'{{"answer": "{answer}", "reason": "same kind of product or not"}}'


def test_pairs_are_a_real_next_item_and_two_the_user_never_took() -> None:
    train, catalog = shop()
    pairs = audit_pairs(train, len(catalog), users=50, seed=1)
    assert len(pairs) == 150 and sorted(set(pairs.kind)) == ["popular", "positive", "random"]
    popular = np.argsort(-np.bincount(train.items, minlength=len(catalog)), kind="stable")[:100]
    for row, cut, item, kind in zip(pairs.rows, pairs.cut, pairs.items, pairs.kind):
        held = train.row(row)
        assert cut == len(held) - 1  # the history is everything before the last item
        if kind == "positive":
            assert item == held[-1]
        else:
            assert item not in held
        if kind == "popular":
            assert item in popular
    assert pairs.label.sum() == 50


def test_the_probability_of_yes_is_read_at_the_answer_token() -> None:
    text = '{"answer": "no", "reason": "x"}'
    pieces = ['{"', "answer", '":', ' "', "no", '",', ' "reason": "x"}']
    assert "".join(pieces) == text
    tokens = [TokenLogprob(token=p, logprob=-0.1, top={p: -0.1}) for p in pieces]
    tokens[4] = TokenLogprob(
        token="no", logprob=math.log(0.6), top={"no": math.log(0.6), "yes": math.log(0.3)}
    )
    parsed = {"answer": "no", "reason": "x"}
    scored = Completion(text=text, parsed=parsed, logprobs=tuple(tokens))
    assert answer_probability(scored) == pytest.approx(1 / 3)
    # A token that spans the opening quote ('"y') counts toward the choice it begins.
    spanning = ['{"answer": ', '"no', '", "reason": "x"}']
    top = {'"no': math.log(0.2), '"y': math.log(0.2), '"ye': math.log(0.2), "  ": -0.1}
    tokens = [TokenLogprob(token=p, logprob=-0.1, top={p: -0.1}) for p in spanning]
    tokens[1] = TokenLogprob(token='"no', logprob=math.log(0.2), top=top)
    spans = Completion(text=text, parsed=parsed, logprobs=tuple(tokens))
    assert answer_probability(spans) == pytest.approx(2 / 3)
    assert answer_probability(Completion(text=text, parsed=parsed)) == 0.0  # no probabilities
    yes = {"answer": "yes", "reason": "x"}
    assert answer_probability(Completion(text=text.replace("no", "yes"), parsed=yes)) == 1.0


def test_auc_threshold_and_verdict() -> None:
    labels = np.array([1, 1, 0, 0, 0])
    assert auc(np.array([0.9, 0.8, 0.1, 0.2, 0.3]), labels) == 1.0
    assert auc(np.array([0.1, 0.2, 0.9, 0.8, 0.7]), labels) == 0.0
    assert auc(np.ones(5), labels) == 0.5  # a judge that always says yes knows nothing
    assert best_threshold(np.array([0.9, 0.8, 0.1, 0.2, 0.85]), labels) == 0.8
    assert verdict(0.52, 0.45, 0.6) == "no better than chance"
    assert verdict(0.56, 0.51, 0.6) == "weak" and verdict(0.8, 0.7, 0.6) == "usable"


def test_a_judge_that_knows_passes_and_a_guessing_one_scores_near_chance(tmp_path) -> None:
    train, catalog = shop()
    audit = JudgeAudit(AuditConfig(users=100, n_resamples=200))
    knowing = audit.run(train, catalog, FakeGenerator(respond=topic_judge, cache_dir=tmp_path))
    summary = knowing.summary
    assert summary["judgments"] == 300 and summary["failed"] == 0
    assert summary["auc"] > 0.9 and summary["verdict"] == "usable"
    assert summary["auc_by_negative"]["random"] > 0.9
    assert summary["yes_rate_positive"] > 0.9 > 0.3 > summary["yes_rate_negative"]
    assert summary["threshold"] == 1.0  # its only "probabilities" are its answers
    assert summary["scored_from_logprobs"] == 1.0 and summary["judge"].startswith("fake(")
    guessing = audit.run(train, catalog, FakeGenerator(model="guess", cache_dir=tmp_path))
    assert abs(guessing.summary["auc"] - 0.5) < 0.1
    assert guessing.summary["auc_ci"][0] < 0.5 < guessing.summary["auc_ci"][1]
    assert guessing.verdict == "no better than chance"
    again = audit.run(train, catalog, FakeGenerator(model="guess", cache_dir=tmp_path))
    assert again.summary["cached"] == 1.0 and again.cost.calls == 0
    assert again.summary["auc"] == guessing.summary["auc"]


def test_an_audit_without_usable_rows_is_a_clear_error() -> None:
    single = Sequences.from_lists([0, 1], [[1], [2]])
    with pytest.raises(ValueError, match="at least two items"):
        audit_pairs(single, 5, users=10)
