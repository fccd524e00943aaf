"""Shared fixtures: small files written in code, and the optional real data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def write(tmp_path: Path):
    """Write ``text`` (str or bytes) to ``tmp_path/name`` and return the path."""

    def _write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def scientific_dir() -> Path:
    path = REAL_DATA / "amazon-scientific"
    if not (path / "Scientific.item.json").exists():
        pytest.skip(f"real data not present at {path}")
    return path


@pytest.fixture
def random_cases():
    """``make(rng, n_users, n_items)``: evaluation cases with random histories of 0 to 5 items
    (no repeats) and one random target each, for ranking tests."""
    import numpy as np

    from shopaug.data.sequences import Sequences
    from shopaug.data.splits import EvalCases

    def make(rng: np.random.Generator, n_users: int, n_items: int) -> EvalCases:
        seqs = [
            rng.choice(n_items, size=rng.integers(0, 6), replace=False).tolist()
            for _ in range(n_users)
        ]
        inputs = Sequences.from_lists([f"user{u}" for u in range(n_users)], seqs)
        targets = rng.integers(0, n_items, n_users)
        return EvalCases(inputs, targets, np.arange(n_users))

    return make
