"""``shopaug train``, ``retrain`` and ``serve`` from the command line, and their errors."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopaug.cli import app
from shopaug.cli.serve import METRICS_PREFIX, _metrics_dir
from shopaug.serve.bundle import Bundle, RunLayout

from .conftest import free_port

runner = CliRunner()


def test_train_then_retrain(shop_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "svc"
    args = ["train", str(shop_run), "--model", "pop", "--out", str(out), "--no-search"]
    result = runner.invoke(app, [*args, "-p", "by_category=true"])
    assert result.exit_code == 0, result.output
    assert "shopaug serve" in result.output
    bundle = Bundle.load(RunLayout(out).version_dir(1))
    assert bundle.manifest.params == {"by_category": True} and bundle.search is None
    with RunLayout(out).log_path.open("ab") as log:  # records no worker could apply
        log.write(b'{"kind": "item", "item_id": "X", "title": "t", "price": Infinity}\n{"kind"\n')
    again = runner.invoke(app, ["retrain", str(out)])
    assert again.exit_code == 0, again.output
    assert RunLayout(out).current() == 2
    assert len((out / "feedback.quarantine.jsonl").read_text().splitlines()) == 2


def test_train_and_serve_fail_with_one_clear_line(shop_run: Path, tmp_path: Path) -> None:
    unknown = runner.invoke(app, ["train", str(shop_run), "-m", "nope", "--out", str(tmp_path)])
    assert unknown.exit_code == 2 and "unknown; known models" in unknown.output
    bad = runner.invoke(app, ["train", str(shop_run), "-m", "pop", "-p", "x", "--out", "o"])
    assert bad.exit_code == 2 and "'x': expected NAME=VALUE" in bad.output
    protocol = ["train", str(shop_run), "-m", "pop", "--protocol", "Q", "--out", str(tmp_path)]
    assert runner.invoke(app, protocol).exit_code == 2
    serve = runner.invoke(app, ["serve", str(tmp_path / "empty")])
    assert serve.exit_code == 2 and "shopaug train" in " ".join(serve.output.split())
    retrain = runner.invoke(app, ["retrain", str(tmp_path / "empty")])
    assert retrain.exit_code == 2 and "no servable model" in " ".join(retrain.output.split())


def serve_exit_status(run_dir: Path, workers: int) -> int:
    command = "from shopaug.cli import app; app()"
    args = ["serve", str(run_dir), "--port", str(free_port()), "--workers", str(workers)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", command, *args], env=env, timeout=90)
    return done.returncode


def test_a_service_that_cannot_start_exits_non_zero(service_dir: Path) -> None:
    manifest = RunLayout(service_dir).version_dir(1) / "manifest.json"
    manifest.write_text("{}")  # the app cannot load the bundle
    assert serve_exit_status(service_dir, workers=2) == 3
    assert serve_exit_status(service_dir, workers=1) == 3
    (service_dir / "serve.json").write_text('{"max_kk": 1}')
    result = runner.invoke(app, ["serve", str(service_dir)])
    assert result.exit_code == 2 and "max_kk" in result.output


def test_starting_removes_the_metrics_folders_of_killed_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    folders = {
        "dead master": f"{METRICS_PREFIX}{gone.pid}-abc",
        "live master": f"{METRICS_PREFIX}{os.getpid()}-abc",
        "dead workers": f"{METRICS_PREFIX}legacy1",  # named before folders carried the pid
        "unknown": f"{METRICS_PREFIX}legacy2",
    }
    for folder in folders.values():
        (tmp_path / folder).mkdir()
    (tmp_path / folders["dead workers"] / f"counter_{gone.pid}.db").touch()
    (tmp_path / folders["dead master"] / f"counter_{os.getpid()}.db").touch()  # a live worker
    (tmp_path / folders["live master"] / f"counter_{gone.pid}.db").touch()
    fresh = _metrics_dir()
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {folders["dead master"], folders["live master"], folders["unknown"], fresh.name}
    (tmp_path / folders["dead master"] / f"counter_{os.getpid()}.db").unlink()
    (tmp_path / folders["dead master"] / f"counter_{gone.pid}.db").touch()
    _metrics_dir()
    assert folders["dead master"] not in {p.name for p in tmp_path.iterdir()}
