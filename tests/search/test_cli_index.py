"""``shopaug search index`` saves a catalog's index once; ``shopaug search`` then loads it and
answers without indexing or encoding the catalog again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopaug.cli import app
from shopaug.data.ingest import IngestSpec, ingest
from shopaug.search import SearchEngine

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, make_catalog) -> Path:
    """An ingested run folder of the eight-item test catalog."""
    root = tmp_path_factory.mktemp("catalog")
    make_catalog().to_csv(root / "items.csv", index=False)
    ingest(IngestSpec(items=root / "items.csv"), root / "run")
    return root / "run"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """One embedding and ONNX cache for this module, apart from the user's."""
    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "index-cache"))


def no_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any index build fail: what follows must load the saved index."""

    def refuse(*args: object, **kwargs: object) -> SearchEngine:
        raise AssertionError("the catalog was indexed again")

    monkeypatch.setattr(SearchEngine, "build", refuse)


def test_index_once_then_query_without_rebuilding(run_dir, tmp_path, monkeypatch) -> None:
    index = tmp_path / "index"
    built = runner.invoke(app, ["search", "index", str(run_dir), "--out", str(index)])
    assert built.exit_code == 0, built.output
    assert "8/8" in built.output and "items/s" in built.output  # the encoding bar
    assert (index / "search.json").exists() and (index / "vectors.npy").exists()
    assert json.loads((index / "search.json").read_text())["config"]["mode"] == "hybrid"
    no_rebuild(monkeypatch)
    for command in (["search"], ["search", "query"]):  # the short form and the long one
        found = runner.invoke(app, [*command, str(index), "orbital sander", "-k", "2"])
        assert found.exit_code == 0, found.output
        assert "hybrid search" in found.output and "A5" in found.output
        assert "search: " in found.output and " ms" in found.output
    filtered = runner.invoke(
        app, ["search", str(index), "collar", "--mode", "bm25", "--category", "Cats"]
    )
    assert filtered.exit_code == 0, filtered.output
    assert "A7" in filtered.output and "A1" not in filtered.output


def test_a_bm25_index_replaces_a_hybrid_one_and_sets_the_query_mode(run_dir, tmp_path) -> None:
    index = tmp_path / "index"
    for mode in ("hybrid", "bm25"):
        args = ["search", "index", str(run_dir), "--out", str(index), "--mode", mode]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    assert not (index / "vectors.npy").exists()
    assert not list(tmp_path.glob(".index.*"))  # no partial or previous copy left behind
    found = runner.invoke(app, ["search", str(index), "tianofa collar"])
    assert found.exit_code == 0 and "bm25 search" in found.output, found.output
    dense = runner.invoke(app, ["search", str(index), "collar", "--mode", "dense"])
    assert dense.exit_code == 2 and "built as bm25" in dense.output


def test_an_expanded_index_finds_items_by_their_synthetic_queries(run_dir, tmp_path) -> None:
    expansion = tmp_path / "queries.csv"
    expansion.write_text("query,item_id\npet neckband,A1\nspare query,A1\n")
    index = tmp_path / "index"
    args = ["search", "index", str(run_dir), "--out", str(index), "--mode", "bm25"]
    built = runner.invoke(app, [*args, "--expansion-file", str(expansion)])
    assert built.exit_code == 0, built.output
    assert "items expanded" in built.output
    found = runner.invoke(app, ["search", str(index), "neckband"])
    assert found.exit_code == 0 and "A1" in found.output, found.output


def test_an_int8_index_saves_its_item_encoder_settings(run_dir, tmp_path) -> None:
    index = tmp_path / "index"
    args = ["search", "index", str(run_dir), "--out", str(index)]
    built = runner.invoke(app, [*args, "--item-backend", "onnx-int8", "--item-max-length", "64"])
    assert built.exit_code == 0, built.output
    config = json.loads((index / "search.json").read_text())["config"]
    assert (config["item_backend"], config["item_max_length"]) == ("onnx-int8", 64)
    found = runner.invoke(app, ["search", str(index), "orbital sander", "-k", "1"])
    assert found.exit_code == 0 and "A5" in found.output, found.output
    bad = runner.invoke(app, [*args, "--item-backend", "gpu"])
    assert bad.exit_code == 2 and "--item-backend 'gpu'" in bad.output


def test_a_run_folder_is_still_searched_and_hints_at_the_index(run_dir) -> None:
    result = runner.invoke(app, ["search", str(run_dir), "vomi", "--mode", "bm25", "-k", "2"])
    assert result.exit_code == 0, result.output
    assert "shopaug search index" in result.output and "A2" in result.output


def test_bad_index_options_are_one_line_errors(run_dir, tmp_path) -> None:
    def error(*args: str) -> str:
        result = runner.invoke(app, ["search", *args])
        assert result.exit_code == 2, result.output
        return result.output

    index = str(tmp_path / "index")
    assert "--out" in error("index", str(run_dir), "--out", str(run_dir))  # not an index folder
    assert "--mode 'magic'" in error("index", str(run_dir), "--out", index, "--mode", "magic")
    assert "--encoder" in error("index", str(run_dir), "--out", index, "--encoder", "/nope")
    assert "no ingested data" in error("index", str(tmp_path / "none"), "--out", index)
    gone = str(tmp_path / "gone.csv")
    assert "--expansion-file" in error(
        "index", str(run_dir), "--out", index, "--expansion-file", gone
    )
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("words\nneckband\n")  # no query and item_id columns
    message = error("index", str(run_dir), "--out", index, "--expansion-file", str(unnamed))
    assert "--expansion-file" in message and "missing column" in message
    assert not (tmp_path / "index").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "search.json").write_text("{not json")
    assert "not a loadable search index" in error(str(broken), "dog")
