"""Generative LLM backends for augmentation: one interface over a local GGUF model (llama.cpp), any
OpenAI-compatible endpoint and a deterministic fake, with strict JSON validation and retries,
failures recorded instead of raised, a crash-safe response cache, and versioned prompt templates.

Backends are registered by name in :data:`GENERATORS`; :func:`make_generator` builds one from a name
and parameters, as the CLI's ``--llm local|openai`` does. The local and OpenAI backends import
their heavy dependencies (llama-cpp-python, httpx) only when first used.
"""

from __future__ import annotations

from typing import Any

from shopaug.llm.base import (
    BatchProgress,
    Completion,
    GenerationError,
    GenerationFailure,
    GenerationParams,
    GenerationRequest,
    Generator,
    Message,
    Result,
    TokenLogprob,
    Usage,
)
from shopaug.llm.cache import ResponseCache
from shopaug.llm.fake import FakeGenerator
from shopaug.llm.local import LocalGenerator
from shopaug.llm.openai_compat import OpenAIGenerator
from shopaug.llm.prompts import PromptError, PromptLibrary, PromptTemplate, load_prompt
from shopaug.registry import build

GENERATORS: dict[str, type[Generator]] = {
    "local": LocalGenerator,
    "openai": OpenAIGenerator,
    "fake": FakeGenerator,
}


def make_generator(name: str, **params: Any) -> Generator:
    """A generator of the registered backend ``name``; unknown names and bad parameters fail with
    their name."""
    return build(GENERATORS, "generators", name, **params)


__all__ = [
    "GENERATORS",
    "BatchProgress",
    "Completion",
    "FakeGenerator",
    "GenerationError",
    "GenerationFailure",
    "GenerationParams",
    "GenerationRequest",
    "Generator",
    "LocalGenerator",
    "Message",
    "OpenAIGenerator",
    "PromptError",
    "PromptLibrary",
    "PromptTemplate",
    "ResponseCache",
    "Result",
    "TokenLogprob",
    "Usage",
    "load_prompt",
    "make_generator",
]
