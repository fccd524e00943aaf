import json

import yaml
from typer.testing import CliRunner

from shopaug.cli import app
from shopaug.cli.demo import DEMO_CONFIG
from shopaug.pipeline import load_config

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_ingest_prints_counts_and_rejects(tmp_path, write):
    items = write("items.csv", "item_id,title\n1,A\n2,\n")
    events = write("events.csv", "user_id,item_id\nu,1\nu,3\n")
    result = invoke(
        "ingest",
        "--items",
        str(items),
        "--interactions",
        str(events),
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 0, result.output
    assert "2 records not kept" in result.output
    assert (tmp_path / "run" / "data" / "rejects.csv").exists()


def test_ingest_error_names_file_and_column(tmp_path, write):
    items = write("items.csv", "item_id,name\n1,A\n")
    result = invoke("ingest", "--items", str(items), "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert "missing required column 'title'" in result.output
    assert "Traceback" not in result.output


def test_ingest_with_mapping(tmp_path, write):
    items = write("items.csv", "asin,title\n1,A\n")
    result = invoke(
        "ingest", "--items", str(items), "--map", "items.item_id=asin", "--out", str(tmp_path / "r")
    )
    assert result.exit_code == 0, result.output


def test_bad_mapping_is_explained(tmp_path, write):
    items = write("items.csv", "asin,title\n1,A\n")
    result = invoke(
        "ingest", "--items", str(items), "--map", "item_id=asin", "--out", str(tmp_path / "r")
    )
    assert result.exit_code == 2
    assert "expected TABLE.COLUMN=FILE_COLUMN" in result.output


def test_ingest_needs_a_source(tmp_path):
    result = invoke("ingest", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "--items" in result.output


def test_stats_of_a_missing_run(tmp_path):
    result = invoke("data", "stats", str(tmp_path / "nothing"))
    assert result.exit_code == 2
    assert "run `shopaug ingest` first" in result.output


def test_demo_runs_end_to_end_on_a_small_shop(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--out", str(out), "--items", "300", "--users", "200")
    assert result.exit_code == 0, result.output
    assert "demo finished" in result.output
    assert (out / "data" / "interactions.parquet").exists()
    bench = json.loads((out / "results.json").read_text())
    # The plan is tuned for the chain, and only the chain trains with it too.
    plan = yaml.safe_load((out / "plan.yaml").read_text())
    config = load_config(DEMO_CONFIG)
    assert plan["model"] == config.tune.model == "markov" and plan["trials"][0]["augment"] is None
    labels = [m["model"] for m in bench["results"]]
    expected = list(config.models)
    if plan["augment"] is not None:
        expected.insert(expected.index("markov") + 1, "markov+aug")
        pairs = {(c["a"], c["b"]) for c in bench["comparisons"]}
        assert ("markov+aug", "markov") in pairs
        assert "test: markov+aug minus markov" in result.output
    assert labels == expected
    # The tuned model is exported with its plan as a servable version.
    manifest = json.loads((out / "service" / "versions" / "0001" / "manifest.json").read_text())
    assert manifest["model"] == "markov" and manifest["augment"] == plan["augment"]
    content = bench["results"][-1]["metrics"]
    assert {"all", "cold", "warm"} <= set(content)
    assert (out / "report" / "report.html").exists()
    stats = invoke("data", "stats", str(out))
    assert stats.exit_code == 0
    assert "items_without_events" in stats.output


def test_demo_shop_files_and_size_validation(tmp_path):
    result = invoke(
        "data",
        "demo-shop",
        "--out",
        str(tmp_path / "shop"),
        "--items",
        "200",
        "--users",
        "50",
        "--format",
        "parquet",
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "shop" / "items.parquet").exists()
    bad = invoke("data", "demo-shop", "--out", str(tmp_path / "x"), "--items", "3")
    assert bad.exit_code == 2
    assert "--n_items" in bad.output or "--items" in bad.output
