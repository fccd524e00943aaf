"""The loop a shop runs: tune -> train --plan -> serve -> events -> retrain --gate, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shopaug.cli import app as cli
from shopaug.data import IngestSpec, ingest
from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop
from shopaug.serve.bundle import Bundle, RunLayout
from shopaug.serve.gate import gate_log

runner = CliRunner()
SPACE = {
    "strategies": ["crop", "insert"],
    "copies": {"low": 1, "high": 4},
    "correlation": ["text", "cooccurrence"],
    "weight": {"low": 0.3, "high": 1.0},
    "max_ratio": {"low": 1.0, "high": 8.0},
    "filters": [["exact-duplicates", "ratio-cap"]],
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loop")
    files = write_demo_shop(
        generate_demo_shop(DemoShopConfig(n_items=300, n_users=250, seed=3)), root / "source"
    )
    ingest(IngestSpec(items=files["items"], interactions=files["interactions"]), root / "run")
    return root / "run"


def invoke(*args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def client(run_dir: Path) -> TestClient:
    from shopaug.serve.app import create_app
    from shopaug.serve.schemas import ServeSettings

    settings = ServeSettings(api_key="k", warm_search=False)
    return TestClient(create_app(run_dir, settings), headers={"X-API-Key": "k"})


def test_tune_train_serve_feedback_and_gated_retrain(shop: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    plan_file = tmp_path / "plan.yaml"
    shown = invoke(
        "tune",
        str(shop),
        "-m",
        "markov",
        "--protocol",
        "W",
        "--trials",
        "6",
        "--space",
        str(space),
        "--min-gain",
        "0",
        "--out",
        str(plan_file),
    )
    assert "samples kept" in shown and "beats the real rows alone" in shown
    plan = yaml.safe_load(plan_file.read_text())
    assert plan["augment"] is not None and plan["score"] > plan["baseline_score"]

    served, plain = tmp_path / "svc", tmp_path / "plain"
    invoke("train", str(shop), "--plan", str(plan_file), "--out", str(served), "--no-search")
    invoke("train", str(shop), "-m", "markov", "--out", str(plain), "--no-search")
    manifest = Bundle.load(RunLayout(served).version_dir(1)).manifest
    assert manifest.augment is not None and manifest.augment.model_dump() == plan["augment"]
    assert sum(manifest.augmentation["kept"].values()) > 0
    assert manifest.tuning["score"] == plan["score"]

    with client(served) as augmented, client(plain) as baseline:
        version = augmented.get("/version").json()
        assert version["augment"]["strategies"] == plan["augment"]["strategies"]
        assert augmented.get("/health").json()["augmented_with"] == plan["augment"]["strategies"]
        assert baseline.get("/health").json()["augmented_with"] == []
        # The service ranks with the augmented model: some user gets a list the same model
        # trained on real rows alone does not give.
        users = Bundle.load(RunLayout(served).version_dir(1)).events["user_id"].unique()[:60]
        lists = {
            u: (
                [r["item_id"] for r in augmented.get(f"/recommend/{u}").json()["items"]],
                [r["item_id"] for r in baseline.get(f"/recommend/{u}").json()["items"]],
            )
            for u in users
        }
        assert any(a != b for a, b in lists.values())

        rng = np.random.default_rng(0)
        items = Bundle.load(RunLayout(served).version_dir(1)).items["item_id"].tolist()
        events = [
            {"user_id": str(u), "item_id": str(rng.choice(items)), "event": "purchase"}
            for u in users
        ]
        assert augmented.post("/events", json={"events": events}).status_code == 201

    shown = invoke("retrain", str(served), "--gate", "--window", "0.5")
    decision = gate_log(served)[-1]
    assert decision["cases"] == 30 and decision["window_events"] == 30
    assert decision["current_score"] is not None and decision["ci"] is not None
    assert f"gate: {decision['reason']}" in " ".join(shown.split())
    layout = RunLayout(served)
    if decision["decision"] == "swap":
        newer = Bundle.load(layout.version_dir(2)).manifest
        assert layout.current() == 2 and newer.gate["decision"] == "swap"
        # The same plan was run again on the data plus the feedback.
        assert newer.augment == manifest.augment and newer.n_events == manifest.n_events + 60
    else:
        assert layout.current() == 1 and layout.versions() == [1]
    assert (served / "mlflow.db").exists()


def test_train_with_a_plan_for_another_model_fails_clearly(shop: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(json.dumps({"model": "markov"}))
    bad = runner.invoke(
        cli, ["train", str(shop), "--plan", str(plan), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and f"--plan {plan}: not a plan" in " ".join(bad.output.split())
