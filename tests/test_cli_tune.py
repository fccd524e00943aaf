import json

import pytest
import yaml
from typer.testing import CliRunner

from shopaug.cli import app

runner = CliRunner()
SPACE = {
    "strategies": ["crop", "insert"],
    "copies": {"low": 1, "high": 3},
    "correlation": "cooccurrence",
    "filters": [["exact-duplicates", "ratio-cap"]],
    "max_ratio": {"low": 1.0, "high": 4.0},
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "demo"
    made = runner.invoke(
        app, ["demo", "--out", str(out), "--items", "200", "--users", "150", "-m", "pop"]
    )
    assert made.exit_code == 0, made.output
    return out


def one_line(output: str) -> str:
    return " ".join(output.split())


def test_tune_prints_every_trial_and_writes_the_plan(shop, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    plan = tmp_path / "plan.yaml"
    args = ["tune", str(shop), "-m", "markov", "--protocol", "w", "--trials", "3"]
    result = runner.invoke(app, [*args, "--space", str(space), "--out", str(plan)])
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(plan.read_text())
    assert written["model"] == "markov" and written["protocol"] == "W"
    assert written["trials"][0]["augment"] is None
    text = one_line(result.output)
    assert "trial 0 complete" in text and "no augmentation" in text
    assert "samples kept" in text and written["verdict"] in text
    assert f"shopaug train {shop} --plan {plan}" in text

    # The plan's test figures, once: the model with and without its plan, paired.
    out = tmp_path / "test.json"
    bench = runner.invoke(
        app,
        [
            "bench",
            "rec",
            "--data",
            str(shop),
            "--plan",
            str(plan),
            "--seeds",
            "1",
            "--out",
            str(out),
            "--no-report",
            "--no-embed",
        ],
    )
    assert bench.exit_code == 0, bench.output
    payload = json.loads(out.read_text())
    if written["augment"] is None:
        assert payload["model"] == "markov"
    else:
        assert [m["model"] for m in payload["models"]] == ["markov", "markov+aug"]
        pairs = {(c["a"], c["b"]) for c in payload["comparisons"]}
        assert pairs == {("markov+aug", "markov")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "nope"], "--model 'nope'"),
        (["-m", "markov", "-p", "order=0"], "--param"),
        (["-m", "markov", "--trials", "0"], "--trials 0"),
        (["-m", "markov", "--protocol", "X"], "--protocol 'X'"),
        (["-m", "markov", "--space", "missing.yaml"], "--space: missing.yaml: cannot read"),
    ],
)
def test_bad_options_are_one_line_errors_before_any_work(tmp_path, args, message):
    result = runner.invoke(app, ["tune", str(tmp_path), *args, "--out", str(tmp_path / "p.yaml")])
    assert result.exit_code == 2, result.output
    assert message in one_line(result.output)
    assert "Traceback" not in result.output and not (tmp_path / "p.yaml").exists()


def test_a_space_with_a_value_no_strategy_takes_fails_naming_it(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({**SPACE, "copies": {"low": 1, "high": 1000}}))
    result = runner.invoke(app, ["tune", str(tmp_path), "-m", "markov", "--space", str(space)])
    assert result.exit_code == 2 and "copies" in one_line(result.output)


def test_bench_and_train_refuse_a_file_that_is_not_a_plan(tmp_path):
    bad = tmp_path / "plan.yaml"
    bad.write_text("trials: []\n")
    bench = runner.invoke(
        app,
        [
            "bench",
            "rec",
            "--data",
            str(tmp_path),
            "--plan",
            str(bad),
            "--out",
            str(tmp_path / "r.json"),
        ],
    )
    assert bench.exit_code == 2 and f"--plan {bad}: not a plan" in one_line(bench.output)
    train = runner.invoke(
        app, ["train", str(tmp_path), "--plan", str(bad), "-o", str(tmp_path / "s")]
    )
    assert train.exit_code == 2 and "not a plan" in one_line(train.output)
    none = runner.invoke(app, ["train", str(tmp_path), "-o", str(tmp_path / "s")])
    assert none.exit_code == 2 and "--model: missing" in one_line(none.output)
