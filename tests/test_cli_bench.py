import json

from typer.testing import CliRunner

from shopaug.cli import app

runner = CliRunner()


def test_bench_rec_on_a_small_demo_shop(tmp_path):
    run = tmp_path / "demo"
    made = runner.invoke(app, ["demo", "--out", str(run), "--items", "200", "--users", "150"])
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
    assert "unknown; known models" in unknown.output
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
