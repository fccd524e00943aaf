"""The text encoder for live traffic: recent texts in memory, no disk-cache round trip.

The shared SQLite embedding cache is right for catalogs (encode once, reuse in every run) and wrong
for search queries: nearly every query is a new text, so each one would cost a write transaction
on a file that training runs and other workers also lock, which under load stalls requests for
seconds. :class:`LiveEncoder` encodes straight away and keeps the most recent vectors in memory.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from shopaug.encode.text_encoder import TextEncoder, text_key


class LiveEncoder(TextEncoder):
    """:class:`TextEncoder` with an in-memory LRU of ``memory`` texts instead of the disk cache."""

    def __init__(self, *args: object, memory: int = 10_000, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.memory = memory
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._recent}
        self.hits += len(texts) - len(todo)
        if todo:
            vectors = self._load().encode(
                list(todo.values()),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
            self.misses += len(todo)
            self._recent.update(zip(todo, np.asarray(vectors, dtype=np.float32), strict=True))
        out = np.stack([self._recent[k] for k in keys])
        for key in keys:
            self._recent.move_to_end(key)
        while len(self._recent) > self.memory:
            self._recent.popitem(last=False)
        return out
