"""``shopaug ingest`` on bad input (issue 20 §2): one-line errors, never a traceback."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from shopaug.cli import app

runner = CliRunner()


def ingest_cli(*args: str):
    result = runner.invoke(app, ["ingest", *args], catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_nan_timestamp_is_a_reject_not_a_crash(tmp_path, write):
    """§2.1, the issue's reproduction."""
    items = write("i.csv", "item_id,title\nI1,a\n")
    events = write("x.csv", "user_id,item_id,timestamp\nU1,I1,2025-01-01\nU2,I1,NaN\n")
    result = ingest_cli(
        "--items", str(items), "--interactions", str(events), "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 0, result.output
    rejects = pd.read_csv(tmp_path / "o" / "data" / "rejects.csv")
    assert rejects[["location", "column"]].values.tolist() == [["line 3", "timestamp"]]


@pytest.mark.parametrize("name", ["items.jsonl", "items.csv"])
def test_unknown_encoding_is_a_one_line_error(tmp_path, write, name):
    """§2.4: --encoding bogus on a JSON lines file raised LookupError."""
    items = write(name, '{"item_id": "1", "title": "A"}\n')
    result = ingest_cli("--items", str(items), "--encoding", "bogus", "--out", str(tmp_path / "o"))
    assert one_line_error(result).startswith("error: --encoding 'bogus': unknown encoding")


def test_out_naming_a_file_is_a_one_line_error(tmp_path, write):
    """§2.4: --out naming an existing file raised NotADirectoryError."""
    items = write("items.csv", "item_id,title\n1,A\n")
    taken = write("taken", "")
    result = ingest_cli("--items", str(items), "--out", str(taken))
    assert "taken: exists and is not a folder" in one_line_error(result)


def test_map_to_an_unknown_column_names_it_and_the_files_columns(tmp_path, write):
    """§2.6: --map items.nosuch=brand was accepted and made an attribute 'nosuch'."""
    items = write("items.csv", "item_id,title,brand\nI1,a,B\n")
    result = ingest_cli(
        "--items", str(items), "--map", "items.nosuch=brand", "--out", str(tmp_path / "o")
    )
    error = one_line_error(result)
    assert "items has no column 'nosuch'" in error
    assert "the file's columns are ['item_id', 'title', 'brand']" in error


def test_the_header_hint_is_a_mapping_that_works(tmp_path, write):
    """§2.6: the hint said --map title=Title, which --map then refused."""
    items = write("items.csv", "item_id,Title\nI1,a\n")
    error = one_line_error(ingest_cli("--items", str(items), "--out", str(tmp_path / "o")))
    assert "--map items.title=Title" in error
    suggested = error.split("--map ")[-1].rstrip(")")
    result = ingest_cli("--items", str(items), "--map", suggested, "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output


def test_extra_event_columns_are_announced(tmp_path, write):
    items = write("items.csv", "item_id,title\nI1,a\n")
    events = write("events.csv", "user_id,item_id,session\nu,I1,s1\n")
    result = ingest_cli(
        "--items", str(items), "--interactions", str(events), "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 0, result.output
    assert "interactions: extra columns kept as attributes: session" in result.output
