"""``shopaug augment``: samples and a summary written for a run folder; bad names exit with 2."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from typer.testing import CliRunner

from shopaug.augment import GeneratedSequences
from shopaug.cli import app
from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop
from shopaug.data.ingest import IngestSpec, ingest
from shopaug.encode import text_encoder

runner = CliRunner()


class HashedWordsEncoder:
    """Stands in for MiniLM (which takes tens of seconds here): a normalised bag of hashed words,
    so titles sharing words are similar and the text strategies have neighbours to use."""

    def __init__(self, model: str | None = None, **_: object) -> None:
        self.model = model

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, zlib.crc32(word.encode()) % 64] += 1.0
        vectors[:, 0] += 1e-3  # no all-zero row for an empty text
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    shop = generate_demo_shop(DemoShopConfig(n_items=300, n_users=200, seed=3))
    ingest(IngestSpec(**write_demo_shop(shop, root / "source")), root / "run")
    return root / "run"


@pytest.fixture
def fake_encoder(monkeypatch) -> None:
    monkeypatch.setattr(text_encoder, "TextEncoder", HashedWordsEncoder)


def test_augment_writes_samples_and_summary_and_prints_the_table(shop_run, fake_encoder) -> None:
    strategies = "crop,substitute,cold-neighbours"
    result = runner.invoke(
        app,
        ["augment", str(shop_run), "-s", strategies, "--aug-param", "crop.copies=2", "--seed", "4"],
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "samples by strategy and filter" in output
    for name in ["crop", "substitute", "cold-neighbours", "- exact-duplicates", "kept"]:
        assert name in output
    folder = shop_run / "augment"  # the default for a run folder
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["protocol"] == "W" and summary["seed"] == 4
    assert summary["plan"]["strategies"] == strategies.split(",")
    assert summary["plan"]["params"] == {"crop": {"copies": 2}}
    assert list(summary["removed"]) == summary["plan"]["filters"]
    samples = GeneratedSequences.read(folder / "samples.parquet")
    assert len(samples) == sum(summary["kept"].values()) > 0
    assert samples.counts_by_origin() == summary["kept"]
    assert set(summary["generated"]) == set(strategies.split(","))
    crop_generators = set(samples.generator[samples.origin == "crop"].tolist())
    assert crop_generators == {"crop(seed=4, ratio=0.6, copies=2, min_length=3)"}
    assert samples.n_events == summary["kept_events"] <= summary["real_events"]


def test_augment_without_filters_into_another_folder(shop_run, fake_encoder, tmp_path) -> None:
    out = tmp_path / "aug"
    args = ["augment", str(shop_run), "-s", "mask", "--filters", "none", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["removed"] == {} and summary["plan"]["filters"] == []
    assert summary["kept"] == {"mask": summary["generated"]["mask"]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-s", "crop,shuffle"], "--augment 'shuffle': unknown; known:"),
        (["-s", "crop", "--filters", "dedupe"], "--filters 'dedupe': unknown"),
        (
            ["-s", "crop", "--aug-param", "crop.ratio=5"],
            "Crop ratio = 5: Input should be less than or equal to 1",
        ),
        (
            ["-s", "crop", "--aug-param", "crop.ratoi=0.5"],
            "Crop ratoi = 0.5: Extra inputs are not permitted",
        ),
        (["-s", "crop", "--aug-param", "mask.ratio=0.5"], "'mask' is not among"),
        (["-s", "crop", "--aug-param", "crop"], "expected TARGET.NAME=VALUE"),
        (["--protocol", "Q"], "--protocol 'Q': unknown protocol; known: W, C, S, T"),
    ],
)
def test_bad_names_and_parameters_exit_with_2(tmp_path, extra, message) -> None:
    result = runner.invoke(app, ["augment", str(tmp_path), *extra])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "augment").exists()


def test_a_folder_without_data_exits_with_2(tmp_path) -> None:
    result = runner.invoke(app, ["augment", str(tmp_path / "missing"), "-s", "crop"])
    assert result.exit_code == 2
    assert "not a run folder" in " ".join(result.output.split())
