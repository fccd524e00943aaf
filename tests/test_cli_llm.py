"""``shopaug llm audit``: the judge measured on known pairs, end to end with the fake backend."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from shopaug.cli import app
from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop
from shopaug.data.ingest import IngestSpec, ingest

runner = CliRunner()


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm-audit")
    shop = generate_demo_shop(DemoShopConfig(n_items=120, n_users=120, seed=5))
    ingest(IngestSpec(**write_demo_shop(shop, root / "source")), root / "run")
    return root / "run"


def test_audit_of_a_guessing_judge_says_it_is_no_better_than_chance(
    shop_run, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "audit"
    args = ["llm", "audit", str(shop_run), "--llm", "fake", "--users", "60", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "judge audit: fake(fake-1) cold_item_judgment@v1" in output
    assert "no better than chance" in output and "calibration" in output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["judgments"] == len(pd.read_parquet(out / "judgments.parquet")) == 180
    assert 0.35 < summary["auc"] < 0.65 and summary["verdict"] == "no better than chance"
    assert summary["protocol"] == "W" and summary["config"]["users"] == 60


def test_audit_options_are_checked_before_any_work(shop_run, tmp_path) -> None:
    few = runner.invoke(app, ["llm", "audit", str(shop_run), "--llm", "fake", "--users", "3"])
    assert few.exit_code == 2 and "users" in few.output
    unknown = runner.invoke(app, ["llm", "audit", str(shop_run), "--llm", "gpt-nine"])
    assert unknown.exit_code == 2 and "unknown" in unknown.output
    missing = runner.invoke(app, ["llm", "audit", str(tmp_path / "nope"), "--llm", "fake"])
    assert missing.exit_code != 0 and "nope" in missing.output and "Traceback" not in missing.output
