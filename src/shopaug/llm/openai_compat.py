"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, Ollama, TGI, llama.cpp).

Hosted endpoints fail in ordinary ways: they time out, answer 429 or 5xx, or a proxy returns an
HTML page instead of JSON. All of these are retried with exponential backoff and jitter (a
``Retry-After`` header is honoured), and what still fails raises a :class:`GenerationError` with a
clear reason, which the batch helpers record as a failure. Requests are limited client-side in two
ways: at most ``concurrency`` in flight (a semaphore shared by the calling threads) and at most
``requests_per_second`` started (starts spaced evenly), so a thread pool cannot trip a provider's
rate limit.

Structured output: ``response_format="json_schema"`` sends OpenAI's
``{"type": "json_schema", "json_schema": {...}}`` (OpenAI, vLLM, Ollama); ``"json_object"`` sends
``{"type": "json_object", "schema": ...}`` as llama-cpp-python's server expects; ``"none"`` sends
nothing and relies on the prompt and on validation.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr

from shopaug.llm.base import (
    Completion,
    GenerationError,
    GenerationParams,
    Generator,
    Message,
    logprobs_from_chat,
)

#: Statuses worth retrying besides 5xx (the same set the official OpenAI client retries).
_RETRYABLE_STATUS = {408, 409, 429}


class RateLimiter:
    """Spaces request starts at least ``1 / per_second`` apart, across threads."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise ImportError(
            "the OpenAI-compatible generator needs httpx (pip install 'shopaug[llm]')"
        ) from exc
    return httpx


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds from now, or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def response_format(style: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The request's ``response_format`` for a JSON schema in the given dialect."""
    if style == "json_schema":
        name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title", "output")))[:64]
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    if style == "json_object":
        return {"type": "json_object", "schema": schema}
    return None


def parse_chat_response(body: Any) -> Completion:
    """A completion from a decoded chat-completions body; a body of any other shape raises a
    retryable ``bad_response`` error (proxies and overloaded servers produce such bodies)."""
    try:
        choice = body["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise _bad(f"no choices[0].message in the response: {str(body)[:200]!r}") from None
    content, refusal = message.get("content"), message.get("refusal")
    if not isinstance(content, str) and not refusal:
        raise _bad(f"choices[0].message has no text content: {str(message)[:200]!r}")
    usage = body.get("usage") or {}
    return Completion(
        text=content if isinstance(content, str) else "",
        refusal=refusal or None,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
        logprobs=logprobs_from_chat(choice),
    )


def _bad(reason: str) -> GenerationError:
    return GenerationError("bad_response", reason, retryable=True)


class OpenAIGenerator(Generator):
    """Chat completions over HTTP (see the module docstring)."""

    backend: ClassVar[str] = "openai"

    model: str = Field(description="Model name the endpoint serves.")
    base_url: str = Field("https://api.openai.com/v1", description="URL up to and with /v1.")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="Environment variable holding the key (unset: no key)."
    )
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(4, ge=0, description="Retries of timeouts, 429, 5xx, bad bodies.")
    backoff_s: float = Field(0.5, ge=0, description="First retry's wait; doubles each retry.")
    max_wait_s: float = Field(60.0, ge=0, description="Longest wait (backoff or Retry-After).")
    concurrency: int = Field(4, ge=1, description="Requests in flight at most.")
    requests_per_second: float | None = Field(None, gt=0, description="Request starts per second.")
    response_format: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema", description="How a JSON schema is sent (see the module docstring)."
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="Extra request fields (e.g. top_k for vLLM)."
    )

    _client: Any = PrivateAttr(None)
    _slots: threading.BoundedSemaphore = PrivateAttr()
    _limiter: RateLimiter = PrivateAttr()
    _jitter: random.Random = PrivateAttr(default_factory=random.Random)

    def model_post_init(self, context: Any) -> None:
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._limiter = RateLimiter(self.requests_per_second)

    def identity(self) -> str:
        return f"{self.model}@{self.base_url.rstrip('/')}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> Any:
        with self._lock:
            if self._client is None:
                httpx = _import_httpx()
                key = os.environ.get(self.api_key_env) if self.api_key_env else None
                self._client = httpx.Client(
                    base_url=self.base_url.rstrip("/") + "/",
                    timeout=httpx.Timeout(self.timeout_s),
                    limits=httpx.Limits(max_connections=self.concurrency),
                    headers={"Authorization": f"Bearer {key}"} if key else {},
                )
        return self._client

    def _generate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        body = self._body(messages, params)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._post(body)
            except GenerationError as exc:
                if not exc.retryable or attempt > self.max_retries:
                    exc.attempts = attempt
                    raise
                time.sleep(self._wait(attempt, exc.retry_after_s))

    def _body(self, messages: Sequence[Message], params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(params, name):
                body[name] = getattr(params, name)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if params.top_logprobs is not None:
            body.update(logprobs=True, top_logprobs=params.top_logprobs)
        if params.json_schema is not None:
            fmt = response_format(self.response_format, params.json_schema)
            if fmt is not None:
                body["response_format"] = fmt
        return {**body, **self.extra_body}

    def _post(self, body: dict[str, Any]) -> Completion:
        """One HTTP attempt; every failure becomes a :class:`GenerationError`."""
        httpx = _import_httpx()
        client = self._http()
        with self._slots:
            self._limiter.wait()
            try:
                response = client.post("chat/completions", json=body)
            except httpx.TimeoutException as exc:
                raise GenerationError(
                    "timeout",
                    f"no answer within {self.timeout_s}s ({type(exc).__name__})",
                    retryable=True,
                ) from exc
            except httpx.HTTPError as exc:
                raise GenerationError(
                    "transport", f"{type(exc).__name__}: {exc}", retryable=True
                ) from exc
        if response.status_code != 200:
            raise GenerationError(
                "http",
                f"HTTP {response.status_code} from {response.url}: {response.text[:200]!r}",
                retryable=response.status_code in _RETRYABLE_STATUS or response.status_code >= 500,
                retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
            )
        try:
            decoded = response.json()
        except ValueError:
            raise _bad(f"response body is not JSON: {response.text[:200]!r}") from None
        return parse_chat_response(decoded)

    def _wait(self, attempt: int, retry_after_s: float | None) -> float:
        """Seconds before retry ``attempt``: the server's Retry-After, else exponential backoff
        with jitter (so many clients that failed together do not retry together)."""
        if retry_after_s is not None:
            return min(retry_after_s, self.max_wait_s)
        ceiling = min(self.max_wait_s, self.backoff_s * 2 ** (attempt - 1))
        return ceiling * self._jitter.uniform(0.5, 1.0)
