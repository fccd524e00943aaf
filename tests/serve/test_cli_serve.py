"""``shopaug train`` and ``shopaug retrain`` from the command line, and their errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shopaug.cli import app
from shopaug.serve.bundle import Bundle, RunLayout

runner = CliRunner()


def test_train_then_retrain(shop_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "svc"
    args = ["train", str(shop_run), "--model", "pop", "--out", str(out), "--no-search"]
    result = runner.invoke(app, [*args, "-p", "by_category=true"])
    assert result.exit_code == 0, result.output
    assert "shopaug serve" in result.output
    bundle = Bundle.load(RunLayout(out).version_dir(1))
    assert bundle.manifest.params == {"by_category": True} and bundle.search is None
    again = runner.invoke(app, ["retrain", str(out)])
    assert again.exit_code == 0, again.output
    assert RunLayout(out).current() == 2


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
