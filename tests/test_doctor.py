"""The doctor's isolation: crashes, hangs and missing packages in a child become report lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopaug.doctor import PARTS, check, run_isolated


def shadow(tmp_path: Path, module: str, body: str) -> dict[str, str]:
    """An environment where ``import module`` runs ``body`` instead of the installed package."""
    folder = tmp_path / "shadow" / module
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(body)
    return {"PYTHONPATH": str(tmp_path / "shadow")}


def test_a_native_crash_in_the_child_is_reported_not_shared() -> None:
    outcome = run_isolated(["-c", "import ctypes; ctypes.string_at(0)"], timeout_s=60)
    assert not outcome.ok and outcome.signal_name == "SIGSEGV"
    assert "crashed with SIGSEGV" in outcome.describe()


def test_a_hang_is_cut_off_at_the_limit() -> None:
    outcome = run_isolated(["-c", "import time; time.sleep(60)"], timeout_s=1)
    assert outcome.timed_out and not outcome.ok
    assert "time limit" in outcome.describe()


def test_a_python_error_names_its_last_line() -> None:
    outcome = run_isolated(["-c", "raise ValueError('bad flag')"], timeout_s=60)
    assert outcome.returncode == 1 and outcome.signal_name is None
    assert "ValueError: bad flag" in outcome.describe()


def test_a_part_whose_package_is_absent_is_missing_with_the_install_hint(tmp_path: Path) -> None:
    env = shadow(tmp_path, "faiss", "raise ImportError(\"No module named 'faiss'\")")
    finding = check("faiss", env)
    assert finding.status == "missing"
    assert "faiss" in finding.detail and "pip install faiss-cpu" in finding.fix


def test_a_part_that_crashes_is_broken_with_the_rebuild_hint(tmp_path: Path) -> None:
    env = shadow(tmp_path, "llama_cpp", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    finding = check("llm", env)
    assert finding.status == "broken"
    assert "SIGSEGV" in finding.detail and "GGML_NATIVE=OFF" in finding.fix


def test_a_part_that_raises_is_broken_with_the_error(tmp_path: Path) -> None:
    env = shadow(
        tmp_path,
        "bm25s",
        "class BM25:\n    def __init__(self):\n        raise OSError('disk gone')\ndef tokenize(*a, **k):\n    return a\n",
    )
    finding = check("bm25", env)
    assert finding.status == "broken" and "OSError: disk gone" in finding.detail


@pytest.mark.parametrize("name", ["faiss", "bm25", "service"])
def test_installed_parts_are_ok_here(name: str) -> None:
    pytest.importorskip({"faiss": "faiss", "bm25": "bm25s", "service": "fastapi"}[name])
    finding = check(name)
    assert finding.status == "ok", finding.detail
    assert finding.fix == "" and finding.seconds > 0


def test_every_part_says_how_to_fix_it() -> None:
    for part in PARTS.values():
        assert part.if_missing and part.if_broken and part.timeout_s > 0
