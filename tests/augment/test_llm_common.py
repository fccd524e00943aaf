"""What the LLM strategies share: one generator per backend and parameters, prompt fields from
the catalog, and the batch runner's cost (the generator's own Usage record)."""

from __future__ import annotations

import pandas as pd

from shopaug.augment.llm_common import (
    LLMOptions,
    history_text,
    item_fields,
    run_batch,
    shared_generator,
)
from shopaug.llm import FakeGenerator, GenerationRequest, Message, Usage, load_prompt

CATALOG = pd.DataFrame(
    {
        "title": ["Beaker", "Gloves", ""],
        "brand": ["Pyrex", None, "X"],
        "categories": ["Lab > Beakers", "Safety", ""],
        "description": [" Glass. ", float("nan"), ""],
    }
)


def test_generators_are_shared_per_backend_and_parameters(tmp_path) -> None:
    one = shared_generator("fake", {"cache_dir": str(tmp_path), "model": "m"})
    assert shared_generator("fake", {"model": "m", "cache_dir": str(tmp_path)}) is one
    assert shared_generator("fake", {"cache_dir": str(tmp_path), "model": "n"}) is not one
    options = LLMOptions(generator="fake", generator_params={"cache_dir": str(tmp_path)})
    assert options.llm() is options.llm()
    mine = FakeGenerator(use_cache=False)
    assert LLMOptions().bind(mine).llm() is mine  # never builds the local default


def test_item_fields_and_history_from_the_catalog() -> None:
    assert item_fields(CATALOG, 1) == {
        "title": "Gloves",
        "brand": "",
        "category": "Safety",
        "description": "",
    }
    assert item_fields(CATALOG, 0)["description"] == "Glass."
    assert history_text(CATALOG, [0, 2, 1]) == "- Beaker\n- Gloves\n"  # untitled items skipped


def test_run_batch_counts_calls_cache_hits_failures_and_progress(tmp_path) -> None:
    template = load_prompt("user_profile")
    good = template.request({"history": "- Beaker\n"})
    bad = GenerationRequest(
        messages=(Message(role="user", content="x"),),
        output_schema={"type": "object", "required": ["a"]},
        retries=0,
    )
    seen = []
    llm = FakeGenerator(cache_dir=tmp_path, malformed_times=1)
    results, cost = run_batch(
        llm, [bad, good, good], "step", progress=lambda label, p: seen.append((label, p.done))
    )
    assert [r.ok for r in results] == [False, True, True]
    assert (cost.requests, cost.calls, cost.cache_hits, cost.failures) == (3, 2, 1, 1)
    assert cost.failure_kinds == {"malformed": 1}
    assert seen == [("step", 1), ("step", 2), ("step", 3)]
    assert cost.completion_tokens > 0 and cost.as_dict()["tokens_per_s"] >= 0
    assert isinstance(cost, Usage) and cost.seconds > 0
    # A second batch costs only its own calls: the cost is the generator's usage during it.
    _, again = run_batch(llm, [good], "again")
    assert (again.requests, again.calls, again.cache_hits, again.failures) == (1, 0, 1, 0)
    assert llm.usage.requests == 4 and llm.usage.failure_kinds == {"malformed": 1}
