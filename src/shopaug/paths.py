"""Where shopaug keeps caches that outlive a run (embeddings, LLM responses), and whether a
folder's owner still runs.

One rule for every stage, so a user moves them all with one variable: ``$SHOPAUG_CACHE_DIR/KIND``,
else ``$XDG_CACHE_HOME/shopaug/KIND`` (``~/.cache`` when XDG is unset). Folders named after a
process (a stage being built, a service's metrics) are cleaned once :func:`process_alive` says
their process is gone.
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


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: a killed master's workers may stay unreaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: trust the signal test
    return state != "Z"
