import json

import pytest
from typer.testing import CliRunner

from shopaug.cli import app

runner = CliRunner()


def test_bench_rec_on_a_small_demo_shop(tmp_path):
    run = tmp_path / "demo"
    made = runner.invoke(
        app, ["demo", "--out", str(run), "--items", "200", "--users", "150", "-m", "pop"]
    )
    assert made.exit_code == 0, made.output
    out = tmp_path / "res" / "results.json"
    args = ["bench", "rec", "--data", str(run), "-m", "pop", "-m", "markov", "--seeds", "1"]
    args += ["-m", "chain2=markov", "-p", "chain2.order=2", "-p", "markov.order=1"]
    result = runner.invoke(app, [*args, "--out", str(out), "--no-embed"])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert [m["model"] for m in payload["models"]] == ["pop", "markov", "chain2"]
    assert payload["models"][1]["config"]["params"] == {"order": 1}
    assert payload["models"][2]["config"]["params"] == {"order": 2}
    assert payload["models"][2]["config"]["estimator"] == "markov"
    assert (tmp_path / "res" / "results_report" / "report.html").exists()


def test_bench_rec_rejects_unknown_models_and_bad_params(tmp_path):
    base = ["bench", "rec", "--data", str(tmp_path), "--out", str(tmp_path / "r.json")]
    unknown = runner.invoke(app, [*base, "-m", "nope"])
    assert unknown.exit_code == 2
    assert "unknown 'nope'; known models" in unknown.output
    aliased = runner.invoke(app, [*base, "-m", "x=nope"])
    assert aliased.exit_code == 2
    assert "'x=nope': unknown" in aliased.output
    blank = runner.invoke(app, [*base, "-m", "=pop"])
    assert blank.exit_code == 2
    assert "expected NAME or LABEL=NAME" in blank.output
    twice = runner.invoke(app, [*base, "-m", "pop", "-m", "pop=markov", "--no-embed"])
    assert twice.exit_code == 2
    assert "label 'pop' is used twice" in " ".join(twice.output.split())
    by_name = runner.invoke(app, [*base, "-m", "c=markov", "-p", "markov.order=2"])
    assert by_name.exit_code == 2
    assert "is not among ['c']" in by_name.output
    bad = runner.invoke(app, [*base, "-m", "pop", "-p", "sasrec.hidden=3"])
    assert bad.exit_code == 2
    assert "is not among" in bad.output
    missing = runner.invoke(app, [*base, "-m", "pop", "--no-embed"])
    assert missing.exit_code == 2
    assert "not a run folder" in " ".join(missing.output.split())


def flat(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-m", "markov", "-p", "markov.order=abc"], "--param markov.order: expected int >= 1"),
        (["-m", "markov", "-p", "markov.nosuch=1"], "--param markov.nosuch: unknown parameter"),
        (["-m", "markov", "-p", "markov.ordr=1"], "did you mean 'order'?"),
        (["-m", "c=markov", "-p", "c.decay=2"], "--param c.decay: expected float in [0, 1]"),
        (["-m", "sasrec", "-p", "sasrec.loss=mse"], "one of 'ce', 'bce', 'sampled'"),
        (["-m", "markov", "-p", "markov.order=[1"], "the value is not valid YAML"),
        (
            ["-m", "markov", "--protocol", "Q"],
            "--protocol 'Q': unknown protocol; known: W, C, S, T",
        ),
    ],
)
def test_bench_rec_checks_parameters_and_options_before_reading_data(tmp_path, args, expected):
    """The data folder does not exist: an error about it would mean work had started."""
    base = ["bench", "rec", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.json")]
    result = runner.invoke(app, [*base, *args], terminal_width=200)
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output and "not a run folder" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_label_used_twice_names_the_model_option(tmp_path):
    base = ["bench", "rec", "--data", str(tmp_path), "--out", str(tmp_path / "r.json")]
    twice = runner.invoke(app, [*base, "-m", "pop", "-m", "pop=markov", "-p", "pop.order=2"])
    assert twice.exit_code == 2
    assert "--model 'pop=markov': label 'pop' is used twice" in flat(twice.output)
    assert "--models" not in twice.output
