"""``shopaug doctor``: the report, its exit status and its option checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopaug.cli import app

runner = CliRunner()


def test_working_parts_exit_zero() -> None:
    pytest.importorskip("faiss")
    result = runner.invoke(app, ["doctor", "--only", "faiss"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "faiss" in result.output and "nothing broken" in result.output


def test_a_broken_part_exits_one_and_shows_the_fix(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "faiss").mkdir()
    (tmp_path / "faiss" / "__init__.py").write_text("raise RuntimeError('bad build')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = runner.invoke(app, ["doctor", "--only", "faiss"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "broken" in result.output and "force-reinstall faiss-cpu" in result.output


def test_unknown_part_is_refused_with_the_choices() -> None:
    result = runner.invoke(app, ["doctor", "--only", "gpu"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "unknown part 'gpu'" in result.output and "encoder" in result.output
