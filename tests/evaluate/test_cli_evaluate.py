import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from shopaug.cli import app

runner = CliRunner()


def evaluate(*args: str):
    result = runner.invoke(app, ["evaluate", *args], catch_exceptions=False)
    return result, " ".join(result.output.split())  # rich wraps long lines


PRED = "user_id,item_id,rank\nu1,a,1\nu1,b,2\nu2,c,1\nu9,a,1\n"
TRUTH_ROWS = [{"user_id": "u1", "item_id": "b"}, {"user_id": "u2", "item_id": "x"}]


@pytest.mark.parametrize("truth_format", ["jsonl", "parquet"])
def test_evaluate_writes_metrics_json(tmp_path, write, truth_format):
    pred = write("pred.csv", PRED)
    truth = tmp_path / f"truth.{truth_format}"
    frame = pd.DataFrame(TRUTH_ROWS)
    if truth_format == "jsonl":
        frame.to_json(truth, orient="records", lines=True)
    else:
        frame.to_parquet(truth)
    out = tmp_path / "out" / "metrics.json"
    result, text = evaluate(
        "--pred", str(pred), "--truth", str(truth), "--out", str(out), "--k", "1", "--k", "2"
    )
    assert result.exit_code == 0, result.output
    assert "recall" in text and "0.2500" in text  # mrr = (1/2 + 0) / 2
    written = json.loads(out.read_text())
    assert written["metrics"]["hit@1"] == 0.0
    assert written["metrics"]["hit@2"] == 0.5
    assert written["metrics"]["mrr"] == 0.25
    assert written["n_users"] == 2
    assert written["n_pred_users_not_in_truth"] == 1
    assert written["ks"] == [1, 2]


def test_ids_with_leading_zeros_stay_text(tmp_path, write):
    pred = write("pred.csv", "user_id,item_id,rank\n007,01,1\n")
    truth = write("truth.csv", "user_id,item_id\n007,01\n7,1\n")
    out = tmp_path / "m.json"
    result, _ = evaluate("--pred", str(pred), "--truth", str(truth), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["metrics"]["hit@10"] == 0.5


def test_bad_rank_is_one_line_naming_file_column_and_row(tmp_path, write):
    pred = write("pred.csv", "user_id,item_id,rank\nu1,a,1\nu1,b,second\n")
    truth = write("truth.csv", "user_id,item_id\nu1,a\n")
    out = tmp_path / "m.json"
    result, text = evaluate("--pred", str(pred), "--truth", str(truth), "--out", str(out))
    assert result.exit_code == 2
    assert "pred.csv: column 'rank', row 2: 'second' is not an integer >= 1" in text
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("truth.csv", "user,item_id\nu1,a\n", "truth.csv: missing required column 'user_id'"),
        ("truth.xlsx", "whatever", "truth.xlsx: unknown file type"),
        ("truth.jsonl", "{not json\n", "truth.jsonl: cannot read it"),
    ],
)
def test_unusable_truth_file(tmp_path, write, name, content, message):
    pred = write("pred.csv", PRED)
    truth = write(name, content)
    result, text = evaluate(
        "--pred", str(pred), "--truth", str(truth), "--out", str(tmp_path / "m.json")
    )
    assert result.exit_code == 2
    assert message in text
    assert "Traceback" not in result.output


def test_missing_file_and_bad_cutoff(tmp_path, write):
    truth = write("truth.csv", "user_id,item_id\nu1,a\n")
    result, text = evaluate(
        "--pred",
        str(tmp_path / "nope.csv"),
        "--truth",
        str(truth),
        "--out",
        str(tmp_path / "m.json"),
    )
    assert result.exit_code == 2
    assert "nope.csv: file not found" in text
    result, text = evaluate(
        "--pred", str(truth), "--truth", str(truth), "--out", str(tmp_path / "m.json"), "--k", "0"
    )
    assert result.exit_code == 2
    assert "--k 0" in text
