from typer.testing import CliRunner

from shopaug.cli import app

runner = CliRunner()

TINY = """
name: tiny
out: {out}
data: {{source: demo, shop: {{n_items: 80, n_users: 60, seed: 1}}}}
split: {{protocol: W}}
encoder: {{enabled: false}}
models: {{pop: {{}}, markov: {{}}}}
evaluation: {{seeds: 1, n_resamples: 100}}
report: {{enabled: false}}
tracking: {{enabled: false}}
"""


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_run_twice_then_compare(tmp_path, write):
    config = write("tiny.yaml", TINY.format(out=tmp_path / "run"))
    first = invoke("run", str(config))
    assert first.exit_code == 0, first.output
    assert "stages of run tiny" in first.output and "ran" in first.output
    second = invoke("run", str(config), "--out", str(tmp_path / "again"))
    assert second.exit_code == 0, second.output
    assert "reused" not in second.output  # another run folder: another cache
    cached = invoke("run", str(config))
    assert cached.output.count("reused") >= 4  # ingest, two trainings, evaluate
    compared = invoke("compare", str(tmp_path / "run"), str(tmp_path / "again"), "--slice", "all")
    assert compared.exit_code == 0, compared.output
    assert "markov" in compared.output and "+0.0000" in compared.output


def test_bad_config_and_bad_run_folders_are_one_line_errors(tmp_path, write):
    config = write("bad.yaml", TINY.format(out=tmp_path / "run") + "evaluation: {seedz: 1}\n")
    result = invoke("run", str(config))
    assert result.exit_code == 2
    assert "evaluation.seedz: unknown key" in result.output
    missing = invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert missing.exit_code == 2
    assert "(no per_user.parquet)" in missing.output


def test_bad_model_parameters_stop_the_run_before_any_stage(tmp_path, write):
    out = tmp_path / "run"
    body = TINY.format(out=out).replace("markov: {}", "markov: {order: abc}")
    result = invoke("run", str(write("bad.yaml", body)))
    assert result.exit_code == 2
    assert "models.markov.order: expected int >= 1 (default 5), got 'abc'" in " ".join(
        result.output.split()
    )
    assert "Traceback" not in result.output
    assert not out.exists()  # nothing was ingested, generated or cached


def test_export_best_refits_the_validation_best_model_for_serving(tmp_path, write):
    import json

    config = write("tiny.yaml", TINY.format(out=tmp_path / "run"))
    done = invoke("run", str(config), "--export", "best")
    assert done.exit_code == 0, done.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())["results"]
    valid = {r["model"]: r["valid_ndcg@10"][0] for r in results}
    best = max(valid, key=valid.get)
    manifest = json.loads((tmp_path / "run/service/versions/0001/manifest.json").read_text())
    assert manifest["model"] == best and manifest["protocol"] == "none"
    assert manifest["tuning"]["label"] == best and manifest["tuning"]["candidates"] == valid
    assert "exporting" in done.output and "shopaug serve" in done.output

    wrong = invoke("run", str(config), "--export", "nope")
    assert wrong.exit_code == 2
    assert "--export 'nope': not a model of this run" in " ".join(wrong.output.split())


def test_an_exported_blend_keeps_the_weights_validation_chose(tmp_path, write):
    """Serving refits on every event, with no validation left: the chosen weights ride along."""
    import json

    body = TINY.format(out=tmp_path / "run").replace(
        "models: {pop: {}, markov: {}}", "models: {blend: {models: [markov, pop]}}"
    )
    done = invoke("run", str(write("blend.yaml", body)), "--export", "blend")
    assert done.exit_code == 0, done.output
    record = json.loads((tmp_path / "run" / "results.json").read_text())["results"][0]
    chosen = record["valid_choices"][0]
    assert chosen["chosen_on"] == "validation"
    manifest = json.loads((tmp_path / "run/service/versions/0001/manifest.json").read_text())
    assert manifest["model"] == "blend"
    assert manifest["params"]["weights"] == chosen["weights"]
    assert manifest["params"]["combine"] == chosen["combines"]
