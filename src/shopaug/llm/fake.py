"""A deterministic generator for unit tests: no model, no network, same output for same input.

Outputs come, in order of precedence, from ``respond`` (a function of messages and parameters),
from ``responses`` (keyed by the last user message), or from a sha256 of the call: plain text, or,
when the call carries a JSON schema, a value built to satisfy that schema, so code that consumes
LLM JSON can be tested without a model. ``malformed_times`` makes the first N calls return
``malformed_text`` instead, to exercise retries and failure records.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr

from shopaug.llm.base import (
    Completion,
    GenerationParams,
    Generator,
    Message,
    TokenLogprob,
    cache_key,
)

Responder = Callable[[Sequence[Message], GenerationParams], str]


class FakeGenerator(Generator):
    """Deterministic stand-in for a real backend (see the module docstring)."""

    backend: ClassVar[str] = "fake"

    model: str = Field("fake-1", description="Model name in cache keys and provenance.")
    respond: Responder | None = Field(None, exclude=True, description="Output of a call.")
    responses: dict[str, str] = Field(
        default_factory=dict, description="Output by the text of the last user message."
    )
    malformed_times: int = Field(0, ge=0, description="The first N calls return malformed_text.")
    malformed_text: str = Field('{"unfinished": ', description="What a malformed call returns.")
    delay_s: float = Field(0.0, ge=0.0, description="Sleep per call, to simulate a slow model.")

    _calls: int = PrivateAttr(0)

    @property
    def calls(self) -> int:
        """Backend calls made so far (cache hits excluded)."""
        return self._calls

    def identity(self) -> str:
        return self.model

    def _generate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        with self._lock:
            self._calls += 1
            malformed = self._calls <= self.malformed_times
        if self.delay_s:
            time.sleep(self.delay_s)
        text = self.malformed_text if malformed else self._output(messages, params)
        return Completion(
            text=text,
            prompt_tokens=sum(len(m.content.split()) for m in messages),
            completion_tokens=max(1, len(text.split())),
            finish_reason="stop",
            logprobs=None if params.top_logprobs is None else fake_logprobs(text),
        )

    def _output(self, messages: Sequence[Message], params: GenerationParams) -> str:
        if self.respond is not None:
            return self.respond(messages, params)
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        if last_user in self.responses:
            return self.responses[last_user]
        digest = cache_key(self.backend, self.model, None, messages, params)
        if params.json_schema is not None:
            return json.dumps(fake_value(params.json_schema, digest))
        return f"fake completion {digest[:12]}"


def fake_logprobs(text: str) -> tuple[TokenLogprob, ...]:
    """Word, punctuation and space tokens of ``text``, each with a probability between 0.6 and
    1 drawn from its hash and no alternatives: a model sure of whatever it said."""
    tokens = re.findall(r"\w+|\s+|[^\w\s]", text)
    out = []
    for i, token in enumerate(tokens):
        share = int(hashlib.sha256(f"{i}:{token}".encode()).hexdigest()[:4], 16) / 0xFFFF
        logprob = math.log(0.6 + 0.4 * share)
        out.append(TokenLogprob(token=token, logprob=logprob, top={token: logprob}))
    return tuple(out)


def fake_value(schema: Mapping[str, Any], seed: str) -> Any:
    """A value satisfying the simple JSON ``schema`` (no minLength beyond 13), chosen by ``seed``."""
    token = hashlib.sha256(seed.encode()).hexdigest()
    pick = int(token[:8], 16)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][pick % len(schema["enum"])]
    kind = schema.get("type", "string")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: fake_value(sub, f"{seed}.{key}") for key, sub in properties.items()}
    if kind == "array":
        low = schema.get("minItems", 1)
        count = max(low, min(schema.get("maxItems", 3), 3))
        return [fake_value(schema.get("items", {}), f"{seed}[{i}]") for i in range(count)]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0) + pick % 10
    if kind == "boolean":
        return pick % 2 == 0
    if kind == "null":
        return None
    text = f"fake {token[:8]}"
    return text[: schema["maxLength"]] if "maxLength" in schema else text
