"""``shopaug augment --llm``: LLM strategies end to end on a small demo shop with the fake backend."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from typer.testing import CliRunner

from shopaug.augment import GeneratedSequences, QuerySamples
from shopaug.cli import app
from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop
from shopaug.data.ingest import IngestSpec, ingest
from shopaug.encode import text_encoder

runner = CliRunner()


class HashedWordsEncoder:
    """Stands in for MiniLM (tens of seconds here): a normalised bag of hashed words."""

    def __init__(self, model: str | None = None, **_: object) -> None:
        self.model = model

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, zlib.crc32(word.encode()) % 64] += 1.0
        vectors[:, 0] += 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment-llm")
    shop = generate_demo_shop(DemoShopConfig(n_items=120, n_users=80, seed=3))
    ingest(IngestSpec(**write_demo_shop(shop, root / "source")), root / "run")
    return root / "run"


@pytest.fixture
def offline(monkeypatch, tmp_path) -> None:
    """The fake encoder, and the response cache in a folder of this test's own."""
    monkeypatch.setattr(text_encoder, "TextEncoder", HashedWordsEncoder)
    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path / "cache"))


def test_llm_cold_end_to_end(shop_run, offline, tmp_path) -> None:
    out = tmp_path / "aug"
    args = ["augment", str(shop_run), "--llm", "fake", "-s", "llm-cold", "--limit", "3"]
    args += ["--aug-param", "llm-cold.audit=false"]
    result = runner.invoke(app, [*args, "--out", str(out), "--llm-param", "model=tiny"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "LLM steps (fake(tiny))" in output and "samples by strategy and filter" in output
    summary = json.loads((out / "summary.json").read_text())
    report = summary["llm"]["steps"]["llm-cold"]
    assert summary["llm"]["generator"] == "fake(tiny)"
    assert report["cold_items"] == 3 and report["items_judged"] == 3
    assert report["pairs"] == report["requests"] == report["calls"] == 30  # 10 candidates each
    assert report["failures"] == 0 and report["yes"] + report["no"] == 30
    params = summary["plan"]["params"]["llm-cold"]
    assert params == {
        "generator": "fake",
        "generator_params": {"model": "tiny"},
        "limit": 3,
        "audit": False,
    }
    samples = GeneratedSequences.read(out / "samples.parquet")
    assert len(samples) == summary["kept"]["llm-cold"] > 0
    assert set(samples.generator) == {"fake(tiny) cold_item_judgment@v1"}
    assert len(set(samples.source_item.tolist())) <= 3

    # Started again: every judgment comes from the response cache, the samples are the same.
    again = runner.invoke(
        app, [*args, "--out", str(tmp_path / "again"), "--llm-param", "model=tiny"]
    )
    assert again.exit_code == 0, again.output
    rerun = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert rerun["llm"]["steps"]["llm-cold"]["calls"] == 0
    assert rerun["llm"]["steps"]["llm-cold"]["cache_hits"] == 30
    repeat = GeneratedSequences.read(tmp_path / "again" / "samples.parquet")
    assert repeat.to_frame().equals(samples.to_frame())


def test_the_text_products_are_written_as_tables(shop_run, offline, tmp_path) -> None:
    out = tmp_path / "aug"
    args = [
        "augment",
        str(shop_run),
        "--llm",
        "fake",
        "-s",
        "llm-queries,llm-profiles,llm-describe",
    ]
    result = runner.invoke(
        app, [*args, "--limit", "2", "--aug-param", "llm-queries.k=5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert not (out / "samples.parquet").exists()  # no row-making strategy was chosen
    queries = QuerySamples.read(out / "queries.parquet")
    assert set(queries.frame["item"]) == {0, 1}
    assert set(queries.frame["origin"]) <= {"llm-query", "llm-query-variant"}
    summary = json.loads((out / "summary.json").read_text())
    steps = summary["llm"]["steps"]
    assert steps["llm-queries"]["queries"] == len(queries)
    assert steps["llm-queries"]["kept"] == int(queries.frame["kept"].sum())
    assert steps["llm-profiles"]["written"] == 2
    for name, file in [
        ("llm-profiles", "profiles.parquet"),
        ("llm-describe", "descriptions.parquet"),
    ]:
        assert steps[name]["file"] == str(out / file) and (out / file).exists()
        assert steps[name]["requests"] == steps[name]["calls"] + steps[name]["cache_hits"]
        assert f"{name}:{out / file}" in "".join(result.output.split())  # rich wraps lines


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-s", "llm-cold"], "-s llm-cold needs --llm local|openai|fake"),
        (["-s", "crop", "--limit", "3"], "--llm-param / --limit need --llm"),
        (["-s", "crop", "--llm", "gpt"], "--llm 'gpt': unknown; known: fake, local, openai"),
        (["-s", "crop", "--llm", "fake", "--llm-param", "modle=x"], "modle"),
        (["-s", "llm-cold", "--llm", "fake", "--llm-param", "model"], "expected KEY=VALUE"),
        (
            ["-s", "llm-queries", "--llm", "fake", "--aug-param", "llm-queries.k=0"],
            "LLMQueries k = 0",
        ),
    ],
)
def test_bad_llm_options_exit_with_2(tmp_path, extra, message) -> None:
    result = runner.invoke(app, ["augment", str(tmp_path), *extra])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
