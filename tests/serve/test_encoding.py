"""The live encoder: same vectors as the cached encoder, memory instead of the disk cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from shopaug.encode.text_encoder import TextEncoder
from shopaug.serve.encoding import LiveEncoder


def test_live_vectors_match_and_stay_off_the_disk_cache(tmp_path: Path) -> None:
    texts = ["borosilicate beaker 250 ml", "digital caliper", "borosilicate beaker 250 ml"]
    live = LiveEncoder(cache_dir=tmp_path / "live", memory=2)
    vectors = live.encode(texts)
    expected = TextEncoder(cache_dir=tmp_path / "disk").encode(texts)
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)
    assert (live.misses, live.hits) == (2, 1)
    live.encode(["digital caliper"])
    assert live.hits == 2
    live.encode(["a third text"])  # evicts the least recent one (the beaker)
    live.encode(["borosilicate beaker 250 ml"])
    assert live.misses == 4
    with sqlite3.connect(tmp_path / "live" / "embeddings.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM vectors").fetchone() == (0,)
