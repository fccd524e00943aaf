"""The generator interface: chat messages in, text or validated JSON out, with usage and latency.

Every backend (local llama.cpp, an OpenAI-compatible endpoint, the test fake) implements one method,
:meth:`Generator._generate`; everything a long augmentation run needs on top of it lives here once:
the response cache (a finished call is never paid for twice, even after a crash), strict JSON
validation with retries, failures recorded as :class:`GenerationFailure` values instead of
exceptions (one bad item must not end a batch of ten thousand), usage counters, and a threaded batch
helper that reports progress.

Generators are pydantic models, like strategies, so a configuration file, the CLI and a run's
provenance record describe a backend the same way (``generator.describe()``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from shopaug.llm.cache import ResponseCache, default_cache_dir
from shopaug.llm.parsing import OutputError, Schema, json_schema_of, output_parser

Role = Literal["system", "user", "assistant"]
#: Why a call failed: the first four judge the model's output, the rest the backend's answer.
FailureKind = Literal[
    "malformed",
    "invalid",
    "refused",
    "truncated",
    "timeout",
    "http",
    "transport",
    "bad_response",
    "backend",
]


class Message(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str


class GenerationParams(BaseModel):
    """Sampling parameters; all of them are part of the cache key.

    The defaults are greedy and seeded so that a rerun reproduces a run: augmentation wants
    repeatable samples more than it wants variety from one call.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(128, ge=1, description="Most tokens to generate.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 is greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    presence_penalty: float = Field(
        0.0, ge=-2.0, le=2.0, description="Penalty on tokens already used (OpenAI semantics)."
    )
    frequency_penalty: float = Field(
        0.0, ge=-2.0, le=2.0, description="Penalty growing with a token's count so far."
    )
    seed: int | None = Field(0, description="Sampling seed; None lets the backend choose.")
    stop: tuple[str, ...] = Field((), description="Strings that end generation.")
    json_schema: dict[str, Any] | None = Field(
        None, description="JSON schema the output must follow (constrained decoding if supported)."
    )
    top_logprobs: int | None = Field(
        None,
        ge=0,
        le=20,
        description="Return each generated token's log-probability and this many alternatives "
        "at each position (None: none): what a yes/no answer's probability is read from.",
    )


class TokenLogprob(BaseModel):
    """One generated token, its log-probability, and the most likely tokens at its position
    (the model's distribution before any grammar constrained the choice)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


def logprobs_from_chat(choice: dict[str, Any]) -> tuple[TokenLogprob, ...] | None:
    """The ``logprobs.content`` of an OpenAI-style chat choice (llama.cpp writes the same shape),
    or None when the choice has none."""
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    return tuple(
        TokenLogprob(
            token=str(entry["token"]),
            logprob=float(entry["logprob"]),
            top={
                str(alt["token"]): float(alt["logprob"]) for alt in entry.get("top_logprobs") or []
            },
        )
        for entry in content
    )


class Completion(BaseModel):
    """A successful generation (fresh or from the cache)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    ok: ClassVar[bool] = True

    text: str
    parsed: Any = Field(None, description="The validated JSON value (complete_json only).")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = Field(0.0, description="Seconds the backend took (when it was generated).")
    backend: str = ""
    model: str = ""
    prompt: str | None = Field(None, description="Prompt template tag, e.g. item_queries@v1.")
    cached: bool = False
    attempts: int = 1
    finish_reason: str | None = None
    refusal: str | None = Field(None, description="The backend's refusal message, if any.")
    key: str = Field("", description="Cache key of the call that produced this text.")
    logprobs: tuple[TokenLogprob, ...] | None = Field(
        None, description="Per generated token, when the call asked for top_logprobs."
    )


class GenerationFailure(BaseModel):
    """A call given up on: what went wrong and what it cost, kept with a run's results."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: ClassVar[bool] = False

    kind: FailureKind
    reason: str
    backend: str = ""
    model: str = ""
    prompt: str | None = None
    attempts: int = 1
    last_text: str | None = Field(None, description="The last rejected output, if any.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


class GenerationError(Exception):
    """A backend call that failed (after the backend's own retries, if it has any)."""

    def __init__(
        self,
        kind: FailureKind,
        reason: str,
        *,
        retryable: bool = False,
        attempts: int = 1,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.retryable = retryable
        self.attempts = attempts
        self.retry_after_s = retry_after_s


class GenerationRequest(BaseModel):
    """One call of a batch: plain text when ``schema`` is None, validated JSON otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    messages: tuple[Message, ...]
    params: GenerationParams = GenerationParams()
    output_schema: Schema | None = None
    prompt: str | None = None
    retries: int = Field(2, ge=0, description="Extra attempts after a malformed/refused output.")


Result = Completion | GenerationFailure
MessagesLike = Iterable[Message | dict[str, str]]


@dataclass
class Usage:
    """What LLM work cost: the one record of calls, cache hits, failures, tokens and seconds.

    A generator keeps its running totals in one; a batch's cost is the difference of two
    snapshots (``after - before``), and costs of several batches add up (``+``), so the
    augmentation summary, the CLI's table and a benchmark's record all report the same fields.
    ``requests`` are the requests run (``run`` or ``complete_many``; one may take several calls),
    ``failures`` those given up on, by kind in ``failure_kinds`` (failures never stop a run);
    ``calls`` are backend calls, ``errors`` the ones the backend failed and ``rejected`` the
    outputs validation refused (each retry counts). Tokens and ``generation_s`` are those of
    backend calls (cache hits cost none); ``seconds`` is the wall time of ``complete_many``
    batches, cache hits included, which is what a long run's throughput is measured against.
    """

    requests: int = 0
    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    errors: int = 0
    rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_s: float = 0.0
    seconds: float = 0.0
    failure_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per wall second of the batches (cache hits included in the time)."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def add(self, completion: Completion) -> None:
        """Count the tokens and backend time of one completion (a rejected output's, say)."""
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.generation_s += completion.latency_s

    def __add__(self, other: Usage) -> Usage:
        return self._combined(other, 1)

    def __sub__(self, other: Usage) -> Usage:
        return self._combined(other, -1)

    def _combined(self, other: Usage, sign: int) -> Usage:
        counts = {
            f.name: getattr(self, f.name) + sign * getattr(other, f.name)
            for f in fields(self)
            if f.name != "failure_kinds"
        }
        kinds = Counter(self.failure_kinds)
        kinds.update({kind: sign * n for kind, n in other.failure_kinds.items()})
        return Usage(**counts, failure_kinds={kind: n for kind, n in kinds.items() if n})

    def as_dict(self) -> dict[str, Any]:
        """The fields and ``tokens_per_s``, as the JSON reports store them."""
        return {**asdict(self), "tokens_per_s": self.tokens_per_s}


@dataclass
class BatchProgress:
    """What a progress bar shows; :meth:`Generator.complete_many` hands out a copy after each
    finished request."""

    total: int
    done: int = 0
    cache_hits: int = 0
    failures: int = 0
    generated_tokens: int = 0
    elapsed_s: float = 0.0
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def items_per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        """Freshly generated tokens per wall second (cache hits cost nothing and count nothing)."""
        return self.generated_tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add(self, result: Result) -> BatchProgress:
        """Count ``result`` and return a snapshot."""
        self.done += 1
        if not result.ok:
            self.failures += 1
        elif result.cached:
            self.cache_hits += 1
        else:
            self.generated_tokens += result.completion_tokens
        self.elapsed_s = time.perf_counter() - self.started
        return replace(self)


def as_messages(messages: MessagesLike) -> tuple[Message, ...]:
    return tuple(m if isinstance(m, Message) else Message(**m) for m in messages)


#: Parameters added after the first release: left out of the key while unset, so every
#: response cached before they existed is still found.
_UNSET_SINCE_V1 = frozenset({"top_logprobs"})


def _unset(params: GenerationParams) -> set[str]:
    return {name for name in _UNSET_SINCE_V1 if getattr(params, name) is None}


def cache_key(
    backend: str,
    model: str,
    prompt: str | None,
    messages: Sequence[Message],
    params: GenerationParams,
) -> str:
    """sha256 over everything that decides a call's output."""
    payload = {
        "backend": backend,
        "model": model,
        "prompt": prompt,
        "messages": [m.model_dump() for m in messages],
        "params": params.model_dump(mode="json", exclude=_unset(params)),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Generator(BaseModel, ABC):
    """Base class of all backends. Subclasses set ``backend`` and implement :meth:`_generate`
    and :meth:`identity`."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    backend: ClassVar[str] = "generator"

    cache_dir: Path | None = Field(
        None, description="Response cache folder; default $SHOPAUG_CACHE_DIR/llm or ~/.cache."
    )
    use_cache: bool = Field(True, description="Read and write the response cache.")
    retry_temperature: float = Field(
        0.7,
        ge=0.0,
        le=2.0,
        description="Lowest temperature of a retry: a greedy retry would repeat the bad output.",
    )

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _usage: Usage = PrivateAttr(default_factory=Usage)
    _cache: ResponseCache | None = PrivateAttr(None)

    # ------------------------------------------------------------------------------------------
    # What a backend implements
    # ------------------------------------------------------------------------------------------

    @abstractmethod
    def identity(self) -> str:
        """The model's name in cache keys and provenance; changes when the model does."""

    @abstractmethod
    def _generate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        """One uncached call. Raise :class:`GenerationError` for anything that went wrong."""

    # ------------------------------------------------------------------------------------------
    # Public calls
    # ------------------------------------------------------------------------------------------

    def complete(
        self,
        messages: MessagesLike,
        params: GenerationParams | None = None,
        *,
        prompt: str | None = None,
    ) -> Completion:
        """Text for ``messages``; raises :class:`GenerationError` if the backend fails."""
        return self._call(as_messages(messages), params or GenerationParams(), prompt, None)

    def try_complete(
        self,
        messages: MessagesLike,
        params: GenerationParams | None = None,
        *,
        prompt: str | None = None,
    ) -> Result:
        """Like :meth:`complete`, but a failed call comes back as a :class:`GenerationFailure`."""
        try:
            return self.complete(messages, params, prompt=prompt)
        except GenerationError as exc:
            return self._failed(exc.kind, exc.reason, prompt, exc.attempts)

    def complete_json(
        self,
        messages: MessagesLike,
        schema: Schema,
        params: GenerationParams | None = None,
        *,
        retries: int = 2,
        prompt: str | None = None,
    ) -> Result:
        """A JSON value validated against ``schema`` (a pydantic model or a JSON schema dict).

        The schema is passed to the backend for constrained decoding where it can; whatever comes
        back is still parsed and validated here. A malformed, invalid, truncated or refused output
        is retried up to ``retries`` times with a new seed (and at least ``retry_temperature``);
        then, or on a backend error, the call is returned as a :class:`GenerationFailure`.
        """
        msgs = as_messages(messages)
        base = (params or GenerationParams()).model_copy(
            update={"json_schema": json_schema_of(schema)}
        )
        parse = output_parser(schema)
        spent = Usage()
        rejected: OutputError | None = None
        for attempt in range(retries + 1):
            try:
                done = self._call(msgs, self._retry_params(base, attempt), prompt, parse)
                return done.model_copy(update={"attempts": attempt + 1})
            except OutputError as exc:
                rejected = exc
                spent.add(exc.completion)
            except GenerationError as exc:
                # The backend already retried what was worth retrying (timeouts, 5xx, 429).
                return self._failed(exc.kind, exc.reason, prompt, attempt + exc.attempts, spent)
        assert rejected is not None
        return self._failed(
            rejected.kind, rejected.reason, prompt, retries + 1, spent, rejected.completion.text
        )

    def run(self, request: GenerationRequest) -> Result:
        """One :class:`GenerationRequest`, never raising a :class:`GenerationError`; counted in
        :attr:`usage` as a request (and a failure, by kind, if it was given up on)."""
        if request.output_schema is None:
            result = self.try_complete(request.messages, request.params, prompt=request.prompt)
        else:
            result = self.complete_json(
                request.messages,
                request.output_schema,
                request.params,
                retries=request.retries,
                prompt=request.prompt,
            )
        self._count_request(result)
        return result

    def complete_many(
        self,
        requests: Sequence[GenerationRequest],
        concurrency: int = 1,
        on_progress: Callable[[BatchProgress], None] | None = None,
    ) -> list[Result]:
        """Results in request order; ``on_progress`` is called (on this thread) after each one.

        Threads suit both backends: HTTP calls wait on the network, and llama.cpp releases the
        GIL while it computes (the local backend serialises its own calls).
        """
        progress = BatchProgress(total=len(requests))
        results: list[Result | None] = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            futures = {pool.submit(self.run, req): i for i, req in enumerate(requests)}
            for future in as_completed(futures):
                result = future.result()
                results[futures[future]] = result
                snapshot = progress.add(result)
                if on_progress is not None:
                    on_progress(snapshot)
        self._count(seconds=time.perf_counter() - progress.started)
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------------------------------
    # Bookkeeping
    # ------------------------------------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        """A copy of the running totals (calls, cache hits, failures, tokens, seconds)."""
        with self._lock:
            return replace(self._usage, failure_kinds=dict(self._usage.failure_kinds))

    @property
    def cache(self) -> ResponseCache | None:
        if not self.use_cache:
            return None
        with self._lock:  # threads of complete_many must not open the database twice
            if self._cache is None:
                self._cache = ResponseCache(self.cache_dir or default_cache_dir())
            return self._cache

    def close(self) -> None:
        """Release the backend's resources (model memory, HTTP connections)."""

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self) -> str:
        """``backend(model)``: recorded with every generated sample."""
        return f"{self.backend}({self.identity()})"

    def key(self, messages: Sequence[Message], params: GenerationParams, prompt: str | None) -> str:
        return cache_key(self.backend, self.identity(), prompt, messages, params)

    def _call(
        self,
        messages: tuple[Message, ...],
        params: GenerationParams,
        prompt: str | None,
        parse: Callable[[Completion], Any] | None,
    ) -> Completion:
        """Cache lookup, else one backend call; only outputs that ``parse`` accepts are stored."""
        key = self.key(messages, params, prompt)
        cache = self.cache
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            try:
                accepted = self._accept(hit, parse)
            except OutputError:
                pass  # stored under an older validator: generate afresh
            else:
                self._count(cache_hits=1)
                return accepted
        started = time.perf_counter()
        try:
            raw = self._generate(messages, params)
        except GenerationError:
            self._count(errors=1)
            raise
        fresh = raw.model_copy(
            update={
                "latency_s": time.perf_counter() - started,
                "backend": self.backend,
                "model": self.identity(),
                "prompt": prompt,
                "key": key,
                "cached": False,
            }
        )
        self._count(
            calls=1,
            prompt_tokens=fresh.prompt_tokens,
            completion_tokens=fresh.completion_tokens,
            generation_s=fresh.latency_s,
        )
        try:
            accepted = self._accept(fresh, parse)
        except OutputError:
            self._count(rejected=1)
            raise
        if cache is not None:
            cache.put(key, accepted)
        return accepted

    @staticmethod
    def _accept(completion: Completion, parse: Callable[[Completion], Any] | None) -> Completion:
        if parse is None:
            return completion
        return completion.model_copy(update={"parsed": parse(completion)})

    def _retry_params(self, params: GenerationParams, attempt: int) -> GenerationParams:
        if attempt == 0:
            return params
        return params.model_copy(
            update={
                "seed": (params.seed or 0) + attempt,
                "temperature": max(params.temperature, self.retry_temperature),
            }
        )

    def _failed(
        self,
        kind: FailureKind,
        reason: str,
        prompt: str | None,
        attempts: int,
        spent: Usage | None = None,
        last_text: str | None = None,
    ) -> GenerationFailure:
        spent = spent or Usage()
        return GenerationFailure(
            kind=kind,
            reason=reason,
            backend=self.backend,
            model=self.identity(),
            prompt=prompt,
            attempts=attempts,
            last_text=last_text,
            prompt_tokens=spent.prompt_tokens,
            completion_tokens=spent.completion_tokens,
            latency_s=spent.generation_s,
        )

    def _count(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self._usage, name, getattr(self._usage, name) + delta)

    def _count_request(self, result: Result) -> None:
        with self._lock:
            self._usage.requests += 1
            if isinstance(result, GenerationFailure):
                self._usage.failures += 1
                kinds = self._usage.failure_kinds
                kinds[result.kind] = kinds.get(result.kind, 0) + 1
