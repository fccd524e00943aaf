"""The code part of stage keys: found from imports (also inside functions), data folders count."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from shopaug.pipeline import code_key
from shopaug.pipeline.stages import STAGE_ROOTS, code_version


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small fake ``shopaug`` package: a imports b inside a function, c is unrelated."""
    root = tmp_path / "shopaug"
    (root / "pkg" / "words").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "a.py").write_text("def f():\n    from shopaug.pkg import b\n    return b\n")
    (root / "pkg" / "b.py").write_text("from . import c_helper\nX = 1\n")
    (root / "pkg" / "c_helper.py").write_text("Y = 2\n")
    (root / "other.py").write_text("Z = 3\n")
    (root / "pkg" / "words" / "list.yaml").write_text("- red\n")
    monkeypatch.setattr(code_key, "ROOT", root)
    return root


def root_in(module: str) -> SimpleNamespace:
    return SimpleNamespace(__module__=module)


def test_the_closure_follows_imports_inside_functions_and_relative_ones(tree: Path) -> None:
    modules = code_key.closure([root_in("shopaug.pkg.a")])
    assert modules == [
        "shopaug",
        "shopaug.pkg",
        "shopaug.pkg.a",
        "shopaug.pkg.b",
        "shopaug.pkg.c_helper",
    ]


def test_editing_an_imported_module_or_a_data_file_changes_the_key(tree: Path) -> None:
    roots = [root_in("shopaug.pkg.a")]
    first = code_key.code_version(roots)
    (tree / "other.py").write_text("Z = 4\n")  # not imported: same key
    assert code_key.code_version(roots) == first
    (tree / "pkg" / "c_helper.py").write_text("Y = 3\n")
    second = code_key.code_version(roots)
    assert second != first
    (tree / "pkg" / "words" / "list.yaml").write_text("- blue\n")
    assert code_key.code_version(roots) != second


def test_a_root_outside_the_package_is_refused() -> None:
    with pytest.raises(ValueError, match="not defined in a shopaug module"):
        code_key.module_name(len)


def test_stage_keys_cover_what_each_stage_runs() -> None:
    augment = code_key.closure(STAGE_ROOTS["augment"])
    assert "shopaug.augment.sequence" in augment and "shopaug.filter.filters" in augment
    assert "shopaug.llm.local" in augment  # imported lazily by the LLM strategies
    ingest = code_key.closure(STAGE_ROOTS["ingest"])
    assert "shopaug.data.readers" in ingest and "shopaug.models.sasrec" not in ingest
    vocab = {p.name for p in code_key.data_files(ingest)}
    assert "categories.yaml" in vocab  # the demo shop's words decide the ingested data
    assert "shopaug.models.sasrec" in code_key.closure(STAGE_ROOTS["train"])
    assert len({code_version(stage) for stage in STAGE_ROOTS}) >= 4
