"""LLMColdJudge: candidate users by embedding similarity, the model's yes/no turned into rows with
provenance, failures counted not raised, the cache making a rerun free, no held-out title in a
prompt."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from shopaug.augment import STRATEGIES, AugmentContext, LLMColdJudge, make_strategy
from shopaug.augment.llm_cold import append_items, user_vectors
from shopaug.data.sequences import Sequences
from shopaug.data.splits import make_split
from shopaug.llm import FakeGenerator
from shopaug.models.augmented import AugmentPlan, augment_train
from shopaug.models.base import ItemSide, TrainData

N_ITEMS = 12
ROWS = [[0, 1, 2], [2, 3, 4, 5], [1, 4, 6], [7, 8, 0], [5, 6, 7, 8]]
# Events: items 9, 10, 11 have none; item 3 has one.


def catalog(n_items: int = N_ITEMS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title": [f"Item {i} Widget" for i in range(n_items)],
            "brand": ["Acme"] * n_items,
            "categories": ["Tools > Widgets"] * n_items,
            "description": [""] * n_items,
        }
    )


def vectors(n_items: int = N_ITEMS, seed: int = 0) -> np.ndarray:
    found = np.random.default_rng(seed).normal(size=(n_items, 8)).astype(np.float32)
    return found / np.linalg.norm(found, axis=1, keepdims=True)


@pytest.fixture
def context() -> AugmentContext:
    train = Sequences.from_lists(["a", "b", "c", "d", "e"], ROWS)
    return AugmentContext(train, N_ITEMS, vectors(), catalog=catalog())


def new_item(messages) -> int:
    return int(re.search(r"New product: Item (\d+) ", messages[-1].content).group(1))


def judge_even_items(messages, params) -> str:
    """Yes exactly for even-numbered new items."""
    answer = "yes" if new_item(messages) % 2 == 0 else "no"
    return json.dumps({"answer": answer, "reason": f"item {new_item(messages)} judged"})


def fake(tmp_path, **params) -> FakeGenerator:
    return FakeGenerator(cache_dir=tmp_path / "cache", respond=judge_even_items, **params)


def test_only_cold_items_are_judged_fewest_events_first(context, tmp_path) -> None:
    strategy = LLMColdJudge(audit=False, max_events=1, candidates=2)
    assert strategy.cold_items(context).tolist() == [9, 10, 11, 3]
    seen: list[int] = []

    def record(messages, params) -> str:
        seen.append(new_item(messages))
        return judge_even_items(messages, params)

    strategy.bind(FakeGenerator(cache_dir=tmp_path, respond=record)).judge(context)
    assert set(seen) == {3, 9, 10, 11}


def test_candidates_are_the_most_similar_users_without_the_item(context) -> None:
    strategy = LLMColdJudge(audit=False, max_events=1, candidates=2)
    users = user_vectors(context.train, vectors())
    pairs = strategy.find_candidates(context, np.array([3, 10]))
    for item in (3, 10):
        similarity = users @ vectors()[item]
        ranked = np.argsort(-similarity)
        allowed = [r for r in ranked if item not in ROWS[r] and similarity[r] >= 0][:2]
        mine = pairs.items == item
        assert pairs.rows[mine].tolist() == allowed
        expected = np.clip(similarity[allowed], 0, 1)
        np.testing.assert_allclose(pairs.similarity[mine], expected, atol=1e-5)
    assert 1 not in pairs.rows[pairs.items == 3]  # row 1 already holds item 3


def test_min_similarity_skips_weak_candidates(context) -> None:
    loose = LLMColdJudge(audit=False, max_events=0, candidates=5).find_candidates(
        context, np.array([9])
    )
    strict = LLMColdJudge(
        audit=False, max_events=0, candidates=5, min_similarity=0.3
    ).find_candidates(context, np.array([9]))
    assert (strict.similarity >= 0.3).all()
    assert len(strict) == int((loose.similarity >= 0.3).sum()) < len(loose)


def test_yes_answers_become_rows_with_provenance(context, tmp_path) -> None:
    strategy = LLMColdJudge(audit=False, max_events=0, candidates=3).bind(fake(tmp_path))
    judged = strategy.judge(context)
    table = judged.table
    assert set(table["item"]) == {9, 10, 11} and len(table) == 9
    assert table["answer"].tolist() == ["yes" if i % 2 == 0 else "no" for i in table["item"]]
    assert table["reason"].str.startswith("item ").all() and table["failure"].isna().all()
    out = judged.samples
    yes = table[table["answer"] == "yes"]
    assert len(out) == len(yes) == 3
    assert set(out.origin) == {"llm-cold"}
    assert set(out.generator) == {"fake(fake-1) cold_item_judgment@v1"}
    assert out.source_item.tolist() == yes["item"].tolist() == [10, 10, 10]
    assert out.source_row.tolist() == yes["row"].tolist()
    np.testing.assert_allclose(out.score, yes["similarity"])
    for row, sample, item in zip(
        out.source_row, out.sequences.to_lists(), out.source_item, strict=True
    ):
        assert sample == [*ROWS[row], item]  # the user's real row with the cold item appended
    assert (out.sequences.users == context.train.users[out.source_row]).all()
    assert judged.report()["yes"] == 3 and judged.report()["no"] == 6


def test_accept_all_control_takes_every_candidate_without_asking(context, tmp_path) -> None:
    backend = fake(tmp_path)
    judged = (
        LLMColdJudge(audit=False, max_events=0, candidates=3, accept_all=True)
        .bind(backend)
        .judge(context)
    )
    asked = (
        LLMColdJudge(audit=False, max_events=0, candidates=3)
        .bind(fake(tmp_path / "b"))
        .judge(context)
    )
    assert backend.usage.calls == 0 and judged.cost.calls == 0
    assert judged.table[["item", "row"]].equals(asked.table[["item", "row"]])
    assert (judged.table["answer"] == "yes").all() and len(judged.samples) == 9
    assert set(judged.samples.generator) == {"no judge (accept_all)"}
    np.testing.assert_allclose(judged.samples.score, asked.table["similarity"])


def test_failures_are_recorded_and_never_raised(context, tmp_path) -> None:
    def broken_for_nine(messages, params) -> str:
        return "not json" if new_item(messages) == 9 else judge_even_items(messages, params)

    strategy = LLMColdJudge(audit=False, max_events=0, candidates=2).bind(
        FakeGenerator(cache_dir=tmp_path, respond=broken_for_nine)
    )
    judged = strategy.judge(context)
    failed = judged.table[judged.table["failure"].notna()]
    assert failed["item"].tolist() == [9, 9]
    assert failed["failure"].str.startswith("malformed").all()
    assert failed["answer"].isna().all()
    assert judged.cost.failures == 2 and judged.cost.failure_kinds == {"malformed": 2}
    assert judged.cost.calls == 2 * 3 + 4  # each failure tried three times (two retries)
    assert len(judged.samples) == 2  # item 10's two candidates still made it


def test_limit_caps_the_items_judged(context, tmp_path) -> None:
    strategy = LLMColdJudge(audit=False, max_events=0, candidates=2, limit=1).bind(fake(tmp_path))
    judged = strategy.judge(context)
    assert set(judged.table["item"]) == {9} and judged.cost.requests == 2
    assert judged.report()["cold_items"] == 1


def test_prompt_shows_the_last_titles_of_the_user_and_the_new_item(context, tmp_path) -> None:
    prompts: list[str] = []

    def record(messages, params) -> str:
        prompts.append(messages[-1].content)
        return judge_even_items(messages, params)

    strategy = LLMColdJudge(audit=False, max_events=0, candidates=1, history=2, limit=1)
    judged = strategy.bind(FakeGenerator(cache_dir=tmp_path, respond=record)).judge(context)
    (row,) = judged.table["row"]
    last_two = "".join(f"- Item {i} Widget\n" for i in ROWS[row][-2:])
    assert prompts == [
        f"Recent products:\n{last_two}\nNew product: Item 9 Widget\nBrand: Acme\n"
        "Category: Tools > Widgets\n"
    ]


def test_a_rerun_makes_no_backend_call_and_gives_the_same_samples(context, tmp_path) -> None:
    strategy = LLMColdJudge(audit=False, max_events=0, candidates=3)
    first_llm = fake(tmp_path)
    first = strategy.model_copy().bind(first_llm).generate(context)
    again_llm = fake(tmp_path)
    again = strategy.model_copy().bind(again_llm).generate(context)
    assert first_llm.calls == 9 and again_llm.calls == 0
    pd.testing.assert_frame_equal(first.to_frame(), again.to_frame())
    assert context.reports["llm-cold"]["cache_hits"] == 9


def test_a_run_cut_short_then_finished_equals_an_uninterrupted_run(context, tmp_path) -> None:
    """Like a run killed midway: the finished calls are not repeated, nothing is duplicated."""
    full = LLMColdJudge(audit=False, max_events=0, candidates=3)
    uninterrupted = full.model_copy().bind(fake(tmp_path / "one")).generate(context)
    full.model_copy(update={"limit": 2}).bind(fake(tmp_path / "two")).generate(context)
    resumed_llm = fake(tmp_path / "two")
    resumed = full.model_copy().bind(resumed_llm).generate(context)
    assert resumed_llm.calls == 3  # only the item the first run never reached
    pd.testing.assert_frame_equal(uninterrupted.to_frame(), resumed.to_frame())


def test_progress_and_report_reach_the_context(context, tmp_path) -> None:
    seen = []
    context.progress = lambda label, state: seen.append((label, state.done, state.total))
    out = (
        LLMColdJudge(audit=False, max_events=0, candidates=2).bind(fake(tmp_path)).generate(context)
    )
    assert seen[-1] == ("llm-cold: 3 items, 6 pairs", 6, 6)
    report = context.reports["llm-cold"]
    assert report["pairs"] == 6 and report["yes"] == len(out) and report["failures"] == 0


def test_it_is_a_registered_strategy_built_from_plain_parameters(tmp_path) -> None:
    assert STRATEGIES["llm-cold"] is LLMColdJudge
    strategy = make_strategy(
        "llm-cold",
        generator="fake",
        generator_params={"cache_dir": str(tmp_path)},
        limit=2,
        audit=False,
    )
    assert strategy.llm().describe() == "fake(fake-1)"
    with pytest.raises(ValueError, match="needs the catalog"):
        strategy.generate(AugmentContext(Sequences.from_lists(["a"], [[0]]), 2, vectors(2)))


def test_augment_train_runs_it_from_a_plan(tmp_path) -> None:
    train = TrainData(
        Sequences.from_lists(["a", "b", "c", "d", "e"], ROWS),
        N_ITEMS,
        items=ItemSide(embeddings=vectors(), catalog=catalog()),
    )
    plan = AugmentPlan(
        strategies=["llm-cold"],
        params={
            "llm-cold": {
                "generator": "fake",
                "generator_params": {"cache_dir": str(tmp_path), "malformed_times": 1},
                "max_events": 0,
                "candidates": 2,
                "audit": False,
            }
        },
        filters=[],
    )
    outcome = augment_train(train, plan)
    summary = outcome.summary()
    assert summary["generated"]["llm-cold"] == len(outcome.samples)
    details = summary["details"]["llm-cold"]
    assert details["requests"] == 6 and details["calls"] == 7  # one malformed output retried
    assert details["yes"] + details["no"] == 6 and details["failures"] == 0


def test_append_items_adds_one_item_at_the_end_of_each_copy() -> None:
    train = Sequences.from_lists(["a", "b"], [[1, 2], [3]])
    out = append_items(train, np.array([1, 0, 1]), np.array([7, 8, 9]))
    assert out.to_lists() == [[3, 7], [1, 2, 8], [3, 9]]
    assert out.users.tolist() == ["b", "a", "b"]


def test_no_held_out_title_reaches_a_prompt(tmp_path) -> None:
    """Validation and test targets are items of their own, titled so they can be spotted."""
    n_users, n_warm = 12, 10
    rng = np.random.default_rng(4)
    rows = [
        [*rng.integers(0, n_warm, size=4).tolist(), n_warm + 2 * u, n_warm + 2 * u + 1]
        for u in range(n_users)
    ]
    n_items = n_warm + 2 * n_users
    split = make_split("W", Sequences.from_lists(list(range(n_users)), rows), n_items)
    names = catalog(n_items)
    names.loc[n_warm:, "title"] = [f"HELDOUT {i}" for i in range(n_warm, n_items)]
    prompts: list[str] = []

    def record(messages, params) -> str:
        prompts.append(messages[-1].content)
        return json.dumps({"answer": "yes", "reason": "fits the history"})

    context = AugmentContext(split.train, n_items, vectors(n_items), catalog=names)
    # Cold items include every held-out item (no training events): they may be the new
    # product, but no user's history may show one.
    strategy = LLMColdJudge(audit=False, max_events=0, candidates=4)
    out = strategy.bind(FakeGenerator(cache_dir=tmp_path, respond=record)).generate(context)
    assert len(prompts) > 0 and len(out) == len(prompts)
    histories = [p.split("New product:")[0] for p in prompts]
    assert not any("HELDOUT" in h for h in histories)
    for row in out.sequences.to_lists():
        assert all(i < n_warm for i in row[:-1])


def knows_the_next_item(messages, params) -> str:
    """An oracle for the audit: yes when the new item is what a training row really took after
    the titles shown (and, for cold items, when it is even-numbered)."""
    shown = [int(i) for i in re.findall(r"- Item (\d+) Widget", messages[-1].content)]
    item = new_item(messages)
    taken = any(row[: len(shown)] == shown and row[len(shown) :][:1] == [item] for row in ROWS)
    answer = "yes" if taken or (item >= 9 and item % 2 == 0) else "no"
    return json.dumps({"answer": answer, "reason": "known"})


def test_a_judge_no_better_than_chance_on_the_audit_is_refused_unless_forced(
    context, tmp_path
) -> None:
    guessing = FakeGenerator(cache_dir=tmp_path / "cache")
    strategy = LLMColdJudge(max_events=0, candidates=3, audit_users=10).bind(guessing)
    with pytest.raises(ValueError, match="no better than chance on the audit") as refused:
        strategy.judge(context)
    assert "accept_all=true" in str(refused.value) and "shopaug llm audit" in str(refused.value)
    calls = guessing.usage.calls
    assert calls == 15  # the audit's 5 rows x 3 pairs; no cold pair was judged
    forced = LLMColdJudge(max_events=0, candidates=3, audit_users=10, force=True).bind(guessing)
    report = forced.judge(context).report()
    assert report["audit"]["verdict"] == "no better than chance" and report["pairs"] == 9
    assert guessing.usage.calls == calls + 9  # the audit came from the cache


def test_an_audited_judge_applies_its_threshold_to_p_yes(context, tmp_path) -> None:
    oracle = FakeGenerator(cache_dir=tmp_path / "cache", respond=knows_the_next_item)
    judged = LLMColdJudge(max_events=0, candidates=3, audit_users=10).bind(oracle).judge(context)
    report = judged.report()
    # A negative drawn from the cold items may be an even one it says yes to: AUC just below 1.
    assert report["audit"]["verdict"] == "usable" and report["audit"]["auc"] > 0.9
    assert report["threshold"] == 1.0  # the fake is sure of every answer: P(yes) is 0 or 1
    table = judged.table
    assert set(table["p_yes"]) <= {0.0, 1.0}
    assert (table["p_yes"] == (table["answer"] == "yes")).all()
    assert report["accepted"] == len(judged.samples) == int((table["p_yes"] >= 1.0).sum()) == 3
    strict = LLMColdJudge(max_events=0, candidates=3, audit=False, threshold=1.0)
    assert len(strict.bind(oracle).judge(context).samples) == 3
