from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shopaug.search import SearchConfig, SearchEngine, SearchFilters


@pytest.fixture
def hybrid(catalog: pd.DataFrame, encoder) -> SearchEngine:
    return SearchEngine.build(catalog, SearchConfig(candidates=5), encoder=encoder)


def ids(hits) -> list[str]:
    return [h.item_id for h in hits]


def test_bm25_engine_needs_no_encoder_and_highlights_matches(catalog: pd.DataFrame) -> None:
    engine = SearchEngine.build(catalog, SearchConfig(mode="bm25"))
    assert engine.dense is None
    hits = engine.search("tianofa collar", k=3)
    assert set(ids(hits)[:2]) == {"A1", "A7"}
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert hits[0].highlights["brand"] == "<em>Tianofa</em>"
    assert "<em>Collar</em>" in hits[0].highlights["title"]
    with pytest.raises(ValueError, match="built as bm25"):
        engine.search("collar", mode="dense")


def test_every_mode_finds_the_obvious_item(hybrid: SearchEngine) -> None:
    for mode in ("bm25", "dense", "hybrid"):
        assert ids(hybrid.search("orbital sander", k=3, mode=mode))[0] == "A5", mode


def test_dense_finds_items_without_shared_words(hybrid: SearchEngine) -> None:
    assert "A6" in ids(hybrid.search("bluetooth loudspeaker", k=2, mode="dense"))
    assert hybrid.search("bluetooth loudspeaker", k=2, mode="bm25") == []


def test_filters_apply_to_every_mode(hybrid: SearchEngine) -> None:
    filters = SearchFilters(category="Cats", max_price=50)
    for mode in ("bm25", "dense", "hybrid"):
        assert set(ids(hybrid.search("pet collar", k=5, filters=filters, mode=mode))) <= {"A7"}


def test_add_change_and_remove_items(hybrid: SearchEngine, catalog: pd.DataFrame) -> None:
    new = pd.DataFrame(
        {"item_id": ["N1"], "title": ["Zorbo Hamster Wheel"], "brand": ["Zorbo"], "price": [12.0]}
    )
    hybrid.add_items(new)
    assert ids(hybrid.search("hamster wheel", k=1))[0] == "N1"
    hybrid.add_items(catalog.iloc[[4]].assign(title="Kael Detail Polisher", description=""))
    assert ids(hybrid.search("polisher", k=1))[0] == "A5"
    hybrid.remove_items(["A1"])
    for mode in ("bm25", "dense", "hybrid"):
        assert "A1" not in ids(hybrid.search("tianofa dog collar", k=8, mode=mode))
    assert len(hybrid) == len(catalog)


def test_save_and_load_give_the_same_results(hybrid: SearchEngine, tmp_path: Path, encoder) -> None:
    hybrid.remove_items(["A2"])
    hybrid.save(tmp_path / "index")
    back = SearchEngine.load(tmp_path / "index", encoder=encoder)
    for query in ("dog bed", "serum for dry skin", "vomi"):
        assert back.search(query, k=5) == hybrid.search(query, k=5)
    assert len(back) == len(hybrid)


def test_bad_queries_are_refused(hybrid: SearchEngine) -> None:
    with pytest.raises(ValueError, match="empty"):
        hybrid.search("   ")
    with pytest.raises(ValueError, match="k must be"):
        hybrid.search("dog", k=0)
    with pytest.raises(FileNotFoundError, match=r"search\.json"):
        SearchEngine.load(Path("/nonexistent"))


def test_precomputed_item_vectors_are_used_as_given(catalog: pd.DataFrame, encoder) -> None:
    vectors = encoder.encode(list(catalog["title"]))
    engine = SearchEngine.build(catalog, encoder=encoder, item_vectors=vectors)
    assert engine.dense.vectors.shape == vectors.shape
    assert (engine.dense.vectors == vectors).all()
    with pytest.raises(ValueError, match="3 rows for 8 catalog rows"):
        SearchEngine.build(catalog, encoder=encoder, item_vectors=vectors[:3])


def test_catalog_encoding_reports_items_done(
    catalog: pd.DataFrame, encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopaug.search import engine as engine_module

    monkeypatch.setattr(engine_module, "ENCODE_STEP", 3)
    calls: list[tuple[int, int]] = []
    followed = SearchEngine.build(catalog, encoder=encoder, on_items=lambda *c: calls.append(c))
    assert calls == [(0, 8), (3, 8), (6, 8), (8, 8)]
    plain = SearchEngine.build(catalog, encoder=encoder)
    assert (followed.dense.vectors == plain.dense.vectors).all()  # steps change nothing


def test_a_bm25_engine_saved_over_a_hybrid_one_leaves_no_dense_index(
    hybrid: SearchEngine, catalog: pd.DataFrame, tmp_path: Path
) -> None:
    hybrid.save(tmp_path / "index")
    SearchEngine.build(catalog, SearchConfig(mode="bm25")).save(tmp_path / "index")
    back = SearchEngine.load(tmp_path / "index")
    assert back.dense is None and back.config.mode == "bm25"
    assert not (tmp_path / "index" / "vectors.npy").exists()


def test_a_bundled_encoder_travels_with_the_index(catalog: pd.DataFrame, tmp_path: Path) -> None:
    import shutil

    from shopaug.encode import TextEncoder, default_model_path
    from shopaug.search.engine import BUNDLED_ENCODER

    tuned = tmp_path / "run" / "fine-tuned"  # stands in for a fine-tune in a training run
    shutil.copytree(default_model_path(), tuned)
    encoder = TextEncoder(tuned, cache_dir=tmp_path / "cache")
    engine = SearchEngine.build(catalog, SearchConfig(mode="dense"), encoder=encoder)
    expected = engine.search("dog bed", k=3)
    engine.save(tmp_path / "index", bundle_encoder=True)
    shutil.rmtree(tmp_path / "run")  # the run is cleaned up; the index is moved to a server
    moved = (tmp_path / "index").rename(tmp_path / "served")
    back = SearchEngine.load(moved)
    assert back.config.encoder == str((moved / BUNDLED_ENCODER).absolute())
    assert back.search("dog bed", k=3) == expected
    assert '"encoder": "encoder"' in (moved / "search.json").read_text()
    back.save(moved, bundle_encoder=True)  # saved over itself: the bundled copy survives
    assert SearchEngine.load(moved).search("dog bed", k=3) == expected
