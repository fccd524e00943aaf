"""The generator interface: JSON retries, failures recorded not raised, batches, the registry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from shopaug.llm import (
    GENERATORS,
    BatchProgress,
    FakeGenerator,
    GenerationError,
    GenerationParams,
    GenerationRequest,
    Generator,
    Message,
    Usage,
    make_generator,
)
from shopaug.llm.base import Completion, cache_key

ASK = [Message(role="user", content="Is a beaker glassware?")]


class Answer(BaseModel):
    answer: str


class Broken(Generator):
    """A backend whose every call fails the way a dead endpoint does."""

    def identity(self) -> str:
        return "broken"

    def _generate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        raise GenerationError("timeout", "no answer within 0.01s", retryable=True, attempts=3)


def test_malformed_output_is_retried_with_a_new_seed(tmp_path: Path) -> None:
    seen: list[GenerationParams] = []

    def respond(messages: Sequence[Message], params: GenerationParams) -> str:
        seen.append(params)
        return "not json" if len(seen) < 3 else '{"answer": "yes"}'

    generator = FakeGenerator(respond=respond, cache_dir=tmp_path)
    result = generator.complete_json(ASK, Answer, retries=2)
    assert result.ok and result.parsed == Answer(answer="yes") and result.attempts == 3
    assert [p.seed for p in seen] == [0, 1, 2]
    assert [p.temperature for p in seen] == [0.0, 0.7, 0.7]
    assert seen[0].json_schema == Answer.model_json_schema()
    usage = generator.usage
    assert (usage.calls, usage.rejected) == (3, 2)


def test_final_failure_is_recorded_with_its_cost(tmp_path: Path) -> None:
    generator = FakeGenerator(malformed_times=10, cache_dir=tmp_path)
    failure = generator.complete_json(ASK, Answer, retries=1, prompt="judge@v1")
    assert not failure.ok
    assert (failure.kind, failure.attempts, failure.prompt) == ("malformed", 2, "judge@v1")
    assert failure.last_text == generator.malformed_text
    assert failure.completion_tokens == 2 * len(generator.malformed_text.split())
    assert generator.cache is not None and len(generator.cache) == 0  # rejected: not cached


def test_backend_errors_become_failures_without_output_retries() -> None:
    failure = Broken(use_cache=False).complete_json(ASK, Answer, retries=5)
    assert (failure.ok, failure.kind, failure.attempts) == (False, "timeout", 3)
    with pytest.raises(GenerationError, match="timeout"):
        Broken(use_cache=False).complete(ASK)
    assert Broken(use_cache=False).try_complete(ASK).kind == "timeout"


def test_complete_many_keeps_order_and_reports_progress(tmp_path: Path) -> None:
    generator = FakeGenerator(cache_dir=tmp_path, malformed_times=0)
    requests = [
        GenerationRequest(messages=(Message(role="user", content=f"item {i}"),)) for i in range(6)
    ]
    requests.append(GenerationRequest(messages=ASK, output_schema=Answer))
    generator.complete(requests[0].messages)  # warm one entry of the cache
    seen: list[BatchProgress] = []
    results = generator.complete_many(requests, concurrency=3, on_progress=seen.append)
    assert [r.text for r in results[:6]] == [
        generator.complete(r.messages).text for r in requests[:6]
    ]
    assert isinstance(results[6].parsed, Answer)
    assert [p.done for p in seen] == list(range(1, 8))
    assert (seen[-1].cache_hits, seen[-1].failures, seen[-1].total) == (1, 0, 7)
    assert seen[-1].generated_tokens > 0 and seen[-1].tokens_per_s > 0


def test_a_failing_request_does_not_stop_a_batch(tmp_path: Path) -> None:
    generator = FakeGenerator(
        cache_dir=tmp_path, responses={"bad": "nope", "good": '{"answer": "fine"}'}
    )
    requests = [
        GenerationRequest(
            messages=(Message(role="user", content=text),), output_schema=Answer, retries=0
        )
        for text in ("good", "bad", "good")
    ]
    results = generator.complete_many(requests, concurrency=2)
    assert [r.ok for r in results] == [True, False, True]
    usage = generator.usage
    assert usage.requests == usage.calls + usage.cache_hits == 3  # two threads: maybe no hit
    assert (usage.failures, usage.rejected, usage.failure_kinds) == (1, 1, {"malformed": 1})
    assert usage.seconds > 0 and usage.tokens_per_s == usage.completion_tokens / usage.seconds


def test_usage_of_a_batch_is_the_difference_of_two_snapshots() -> None:
    before = Usage(requests=2, calls=2, prompt_tokens=10, seconds=1.0, failure_kinds={"http": 1})
    batch = Usage(3, 2, failures=1, completion_tokens=8, seconds=2.0, failure_kinds={"timeout": 1})
    after = before + batch
    assert after.failure_kinds == {"http": 1, "timeout": 1} and after.requests == 5
    assert after - before == batch and batch.tokens_per_s == 4.0
    assert batch.as_dict()["tokens_per_s"] == 4.0 and batch.as_dict()["failures"] == 1
    generator = FakeGenerator(use_cache=False)
    snapshot = generator.usage
    snapshot.failure_kinds["x"] = 1  # a snapshot is a copy, not the running record
    assert generator.usage.failure_kinds == {}


def test_keys_of_calls_without_new_parameters_are_those_of_earlier_releases() -> None:
    # The key of this call before top_logprobs existed: a cache filled then is still found.
    ask = [Message(role="user", content="three queries for a lab beaker")]
    key = cache_key("local", "m", "p@v1", ask, GenerationParams())
    assert key == "86d5bcc84bbaf5f16be9cb4d6d00abe3853588a4f626320b61e22a65ef6b9ae2"
    assert cache_key("local", "m", "p@v1", ask, GenerationParams(top_logprobs=3)) != key


def test_cache_key_covers_every_input() -> None:
    params = GenerationParams()
    base = cache_key("local", "m", "p@v1", ASK, params)
    assert base == cache_key("local", "m", "p@v1", ASK, GenerationParams())
    others = {
        cache_key("openai", "m", "p@v1", ASK, params),
        cache_key("local", "m2", "p@v1", ASK, params),
        cache_key("local", "m", "p@v2", ASK, params),
        cache_key("local", "m", "p@v1", [Message(role="user", content="?")], params),
        cache_key("local", "m", "p@v1", ASK, GenerationParams(seed=1)),
    }
    assert base not in others and len(others) == 5


def test_registry_builds_by_name_and_rejects_unknown(tmp_path: Path) -> None:
    assert set(GENERATORS) == {"local", "openai", "fake"}
    generator = make_generator("fake", model="tiny", cache_dir=tmp_path)
    assert generator.describe() == "fake(tiny)"
    assert make_generator("openai", model="m", base_url="http://x/v1").describe() == (
        "openai(m@http://x/v1)"
    )
    with pytest.raises(ValueError, match="unknown generator 'gpt'; known generators: fake"):
        make_generator("gpt")
    with pytest.raises(ValidationError, match="max_tokens"):
        GenerationParams(max_tokens=0)
