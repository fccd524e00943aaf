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
