"""The description product and enricher (only empty descriptions are written) and user intent
profiles (from training titles only)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shopaug.augment import (
    ENRICHERS,
    LLMDescriptionEnricher,
    LLMDescriptions,
    TextSource,
    UserProfiles,
    enrich_texts,
)
from shopaug.augment.llm_text import empty_descriptions, user_profiles
from shopaug.data.sequences import Sequences
from shopaug.data.splits import make_split
from shopaug.llm import FakeGenerator

CATALOG = pd.DataFrame(
    {
        "title": ["Glass Beaker", "Nitrile Gloves", "Caliper", "Flask"],
        "brand": ["Pyrex", "Medline", "Mitutoyo", None],
        "categories": ["Lab > Beakers", "Safety > Gloves", "Measurement", "Lab > Flasks"],
        "description": ["", "Powder free gloves.", None, "  "],
    }
)
TEXTS = ["Glass Beaker. Pyrex", "Nitrile Gloves. Powder free gloves.", "Caliper", "Flask"]


def describe(messages, params) -> str:
    title = messages[-1].content.splitlines()[0].removeprefix("Title: ")
    return f"A fine {title.lower()}."


def test_only_blank_descriptions_count_as_empty() -> None:
    assert empty_descriptions(CATALOG).tolist() == [0, 2, 3]


def test_enricher_writes_only_missing_descriptions(tmp_path) -> None:
    llm = FakeGenerator(cache_dir=tmp_path, respond=describe)
    enricher = ENRICHERS["llm-describe"](catalog=CATALOG).bind(llm)
    assert isinstance(enricher, LLMDescriptionEnricher)
    run = enricher.generate(CATALOG)
    assert run.table["item"].tolist() == [0, 2, 3]
    assert run.table["description"].tolist() == [
        "A fine glass beaker.",
        "A fine caliper.",
        "A fine flask.",
    ]
    assert set(run.table["generator"]) == {"fake(fake-1) describe_item@v1"}
    assert set(run.table["prompt"]) == {"describe_item@v1"}
    enriched = enrich_texts(TEXTS, [enricher])
    assert enriched.changed == {"llm-describe": [0, 2, 3]}
    assert enriched.texts[1] == TEXTS[1]  # a seller's description is never rewritten
    assert enriched.texts[0] == "Glass Beaker. Pyrex. A fine glass beaker."


def test_enricher_limit_and_failures(tmp_path) -> None:
    llm = FakeGenerator(cache_dir=tmp_path, respond=describe)
    run = LLMDescriptions(limit=1).bind(llm).generate(CATALOG)
    assert run.table["item"].tolist() == [0] and run.cost.requests == 1
    empty = FakeGenerator(cache_dir=tmp_path / "other", respond=lambda m, p: "   ")
    run = LLMDescriptions().bind(empty).generate(CATALOG)
    assert len(run.table) == 0 and run.report()["written"] == 0


def profile(messages, params) -> str:
    lines = messages[-1].content.splitlines()[1:]
    return json.dumps({"profile": "Shops for " + ", ".join(line[2:] for line in lines if line)})


def test_profiles_from_the_last_titles_of_each_row(tmp_path) -> None:
    train = Sequences.from_lists(["a", "b", "c"], [[0, 1, 2], [], [3, 0]])
    llm = FakeGenerator(cache_dir=tmp_path, respond=profile)
    run = user_profiles(train, CATALOG, llm, history=2, user_index=np.array([5, 6, 7]))
    table = run.table
    assert table["row"].tolist() == [0, 2]  # an empty row has nothing to profile
    assert table["user"].tolist() == ["a", "c"] and table["user_index"].tolist() == [5, 7]
    assert table["profile"].tolist() == [
        "Shops for Nitrile Gloves, Caliper",
        "Shops for Flask, Glass Beaker",
    ]
    assert set(table["generator"]) == {"fake(fake-1) user_profile@v1"}
    assert set(table["prompt"]) == {"user_profile@v1"}


def test_profiles_step_honours_limit_and_counts_failures(tmp_path) -> None:
    train = Sequences.from_lists(["a", "b", "c"], [[0], [1], [2]])
    broken = FakeGenerator(cache_dir=tmp_path, respond=lambda m, p: '{"profile": 3}')
    run = UserProfiles(limit=2).bind(broken).generate(TextSource(CATALOG, train))
    assert len(run.table) == 0 and run.cost.requests == 2 and run.cost.failures == 2


def test_profiles_step_honours_offset(tmp_path) -> None:
    train = Sequences.from_lists(["a", "b", "c"], [[0], [1], [2]])
    llm = FakeGenerator(cache_dir=tmp_path, respond=profile)
    run = UserProfiles(offset=1, limit=1).bind(llm).generate(TextSource(CATALOG, train))
    assert run.cost.requests == 1 and run.table["user"].tolist() == ["b"]


def test_profiles_need_the_training_rows() -> None:
    with pytest.raises(ValueError, match="llm-profiles needs the training rows"):
        UserProfiles().bind(FakeGenerator(use_cache=False)).generate(CATALOG)


def test_no_held_out_title_reaches_a_profile_prompt(tmp_path) -> None:
    n_users = n_warm = 8  # distinct histories: no prompt is a cache hit of another
    rows = [
        [u % n_warm, (u + 1) % n_warm, n_warm + 2 * u, n_warm + 2 * u + 1] for u in range(n_users)
    ]
    n_items = n_warm + 2 * n_users
    split = make_split("W", Sequences.from_lists(list(range(n_users)), rows), n_items)
    titles = [f"warm {i}" for i in range(n_warm)] + [f"HELDOUT {i}" for i in range(n_warm, n_items)]
    catalog = pd.DataFrame({"title": titles, "brand": "", "categories": "", "description": ""})
    prompts: list[str] = []

    def record(messages, params) -> str:
        prompts.append(messages[-1].content)
        return json.dumps({"profile": "a shopper of warm things"})

    llm = FakeGenerator(cache_dir=tmp_path, respond=record)
    run = user_profiles(split.train, catalog, llm)
    assert len(run.table) == len(prompts) == n_users
    assert not any("HELDOUT" in p for p in prompts)
