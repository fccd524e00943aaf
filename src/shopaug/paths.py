"""Where shopaug keeps caches that outlive a run (embeddings, LLM responses).

One rule for every stage, so a user moves them all with one variable: ``$SHOPAUG_CACHE_DIR/KIND``,
else ``$XDG_CACHE_HOME/shopaug/KIND`` (``~/.cache`` when XDG is unset).
"""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(kind: str) -> Path:
    """The cache folder of one kind of cached thing (``embeddings``, ``llm``)."""
    root = os.environ.get("SHOPAUG_CACHE_DIR")
    if root:
        return Path(root) / kind
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "shopaug" / kind
