"""``shopaug models``, model parameters on the command line, and help that reads right."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from shopaug.cli import app
from shopaug.cli.app import console
from shopaug.models import MODELS, model_param_specs

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Tables as a wide terminal shows them, so no name is folded across lines."""
    monkeypatch.setattr(console, "width", 200)


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, terminal_width=200)


def flat(output: str) -> str:
    return " ".join(output.split())


def command_paths(command=None, path=()):
    """Every command and group of the CLI, as argument lists (the root is ``()``)."""
    command = command or typer.main.get_command(app)
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def test_models_lists_every_model_with_its_parameters() -> None:
    result = invoke("models")
    assert result.exit_code == 0, result.output
    for name in MODELS:
        assert name in result.output
        for spec in model_param_specs(name):
            assert spec.name in result.output


def test_models_name_shows_one_model_with_type_default_range_and_help() -> None:
    result = invoke("models", "markov")
    assert result.exit_code == 0, result.output
    for text in ("order", "int", ">= 1", "smoothing", "30.0", "in [0, 1]", "first-order"):
        assert text in result.output
    assert "sasrec" not in result.output


def test_models_with_an_unknown_name_lists_the_names() -> None:
    result = invoke("models", "nope")
    assert result.exit_code == 2
    assert "unknown model 'nope'; known models: pop, pop-category, itemknn" in flat(result.output)


def test_bench_rec_help_lists_the_models_and_points_to_shopaug_models() -> None:
    result = invoke("bench", "rec", "--help")
    assert result.exit_code == 0
    assert ", ".join(MODELS) in flat(result.output)
    assert "`shopaug models`" in result.output


@pytest.mark.parametrize("path", list(command_paths()), ids=lambda p: " ".join(p) or "shopaug")
def test_help_shows_no_value_type_on_flags(path) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output


def test_train_checks_its_parameters_before_reading_data(tmp_path) -> None:
    missing = tmp_path / "no-such-data"  # an error about the data would mean work started
    bad = invoke("train", str(missing), "-m", "markov", "-p", "order=abc", "--out", "o")
    assert bad.exit_code == 2
    assert "--param markov.order: expected int >= 1 (default 5), got 'abc'" in flat(bad.output)
    unknown = invoke("train", str(missing), "-m", "markov", "-p", "ordr=2", "--out", "o")
    assert unknown.exit_code == 2
    assert "markov.ordr: unknown parameter; did you mean 'order'?" in flat(unknown.output)
    assert "Traceback" not in bad.output + unknown.output
