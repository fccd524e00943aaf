from __future__ import annotations

import numpy as np
import pytest

from shopaug.encode.onnx_encoder import OnnxUnavailable
from shopaug.search import dense as dense_module
from shopaug.search.dense import DenseIndex, QueryEncoder


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_exact_below_threshold_hnsw_above_and_same_neighbours(tmp_path) -> None:
    vectors = unit(np.random.default_rng(0).normal(size=(300, 16)))
    flat = DenseIndex(16, hnsw_threshold=10_000)
    flat.add(vectors, n_live=300)
    hnsw = DenseIndex(16, hnsw_threshold=200)
    hnsw.add(vectors[:100], n_live=100)
    assert hnsw.kind == "flat"
    hnsw.add(vectors[100:], n_live=300)
    assert flat.kind == "flat" and hnsw.kind == "hnsw"
    query = vectors[7]
    assert flat.search(query, 1)[0][0] == 7 and hnsw.search(query, 1)[0][0] == 7
    hnsw.save(tmp_path)
    back = DenseIndex.load(tmp_path, 200, 32, 64)
    assert back.kind == "hnsw" and back.search(query, 1)[0][0] == 7


def test_allowed_mask_excludes_items_on_both_paths(monkeypatch) -> None:
    vectors = unit(np.random.default_rng(1).normal(size=(50, 8)))
    index = DenseIndex(8, hnsw_threshold=10_000)
    index.add(vectors, n_live=50)
    allowed = np.ones(50, dtype=bool)
    allowed[7] = False
    direct = index.search(vectors[7], 5, allowed)
    monkeypatch.setattr(dense_module, "DIRECT_LIMIT", 0)  # force the FAISS selector path
    selected = index.search(vectors[7], 5, allowed)
    assert 7 not in direct[0] and 7 not in selected[0]
    np.testing.assert_array_equal(direct[0], selected[0])
    np.testing.assert_allclose(direct[1], selected[1], rtol=1e-5)


def test_query_encoder_backends_give_the_same_vectors(encoder) -> None:
    pytest.importorskip("onnxruntime")
    queries = ["cozy dog bed", "sunscreen spf 50", "cozy dog bed"]
    onnx = QueryEncoder(encoder.model, backend="onnx")
    torch = QueryEncoder(encoder.model, backend="torch")
    assert onnx.runtime == "onnx" and torch.runtime == "torch"
    on_onnx = np.stack([onnx.encode(q) for q in queries])
    on_torch = np.stack([torch.encode(q) for q in queries])
    np.testing.assert_allclose(on_onnx, on_torch, atol=1e-5)
    np.testing.assert_allclose(on_onnx, encoder.encode(queries), atol=1e-5)


def test_auto_backend_falls_back_to_torch_with_the_reason(encoder, monkeypatch, caplog) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise OnnxUnavailable("onnxruntime is not installed")

    monkeypatch.setattr(dense_module, "OnnxSentenceEncoder", unavailable)
    auto = QueryEncoder(encoder.model, backend="auto")
    with caplog.at_level("WARNING", logger="shopaug.search.dense"):
        assert auto.runtime == "torch" and "onnxruntime" in auto.fallback_reason
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (
        len(warned) == 1 and "PyTorch" in warned[0] and "onnxruntime is not installed" in warned[0]
    )
    np.testing.assert_allclose(auto.encode("dog bed"), encoder.encode(["dog bed"])[0], atol=1e-5)
    with pytest.raises(OnnxUnavailable):
        QueryEncoder(encoder.model, backend="onnx").encode("dog bed")


def test_chosen_torch_backend_does_not_warn(encoder, monkeypatch, caplog) -> None:
    monkeypatch.setattr(dense_module, "_sentence_model", lambda path, device: object())
    with caplog.at_level("WARNING", logger="shopaug.search.dense"):
        assert QueryEncoder(encoder.model, backend="torch").runtime == "torch"
    assert not caplog.records
