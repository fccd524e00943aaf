import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from shopaug.data.errors import DataError
from shopaug.data.readers import detect_format, read_raw


@pytest.fixture
def con():
    return duckdb.connect()


def rows(con, raw):
    return con.execute(f"SELECT * FROM {raw.relation} ORDER BY _row").fetchdf()


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.tsv", "csv"),
        ("a.csv.gz", "csv"),
        ("a.parquet", "parquet"),
        ("a.jsonl", "jsonl"),
        ("Scientific.item.json", "amazon-items"),
        ("Scientific.inter.json", "amazon-inter"),
    ],
)
def test_detect_format(tmp_path, name, fmt):
    assert detect_format(tmp_path / name) == fmt


def test_unknown_extension_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"a\.xlsx: cannot tell the format"):
        detect_format(tmp_path / "a.xlsx")


def test_missing_file_is_named(con, tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_raw(con, tmp_path / "nope.csv", "items")


def test_csv_structural_rejects_carry_exact_lines(con, write):
    path = write(
        "items.csv",
        b"item_id,title\n1,A\n2,B,extra\n3\n4,\xff\xfe\n5,E\n",
    )
    raw = read_raw(con, path, "items")
    assert raw.columns == ["item_id", "title"]
    assert raw.n_records == 5
    assert rows(con, raw)["item_id"].tolist() == ["1", "5"]
    rej = raw.structural_rejects.set_index("location")["reason"]
    assert "wrong number of fields" in rej["line 3"]
    assert "wrong number of fields" in rej["line 4"]
    assert "bad encoding" in rej["line 5"]
    # Accepted rows map back to their physical lines around the rejected ones.
    assert raw.locate(np.array([1, 2])) == ["line 2", "line 6"]


def test_csv_with_multiline_records_reports_record_numbers(con, write):
    path = write("items.csv", 'item_id,title\n1,"two\nlines"\n2,B\n')
    raw = read_raw(con, path, "items")
    assert raw.locate(np.array([2])) == ["record 2"]


def test_csv_rename_maps_columns(con, write):
    path = write("items.csv", "asin,name\n1,A\n")
    raw = read_raw(con, path, "items", rename={"item_id": "asin", "title": "name"})
    assert raw.columns == ["item_id", "title"]
    assert rows(con, raw)["title"].tolist() == ["A"]


def test_rename_of_an_absent_column_is_an_error(con, write):
    path = write("items.csv", "asin,title\n1,A\n")
    with pytest.raises(DataError, match=r"column 'sku' \(mapped to 'item_id'\) is not in the file"):
        read_raw(con, path, "items", rename={"item_id": "sku"})


def test_parquet_values_become_text_with_row_numbers(con, tmp_path):
    path = tmp_path / "items.parquet"
    pd.DataFrame({"item_id": [10, 11], "title": ["a", "b"], "price": [1.5, None]}).to_parquet(path)
    raw = read_raw(con, path, "items")
    df = rows(con, raw)
    assert df["item_id"].tolist() == ["10", "11"]
    assert df["price"].tolist()[0] == "1.5"
    assert df["_row"].tolist() == [1, 2]
    assert raw.locate(np.array([2])) == ["row 2"]


def test_jsonl_bad_lines_become_rejects(con, write):
    path = write(
        "items.jsonl",
        b'{"item_id": 1, "title": "A"}\n'
        b"\n"
        b'{"item_id": 2, "title": \n'
        b"[1, 2]\n"
        b'{"item_id": 3, "title": "\xff"}\n'
        b'{"item_id": 4, "title": "D", "tags": ["x"]}\n',
    )
    raw = read_raw(con, path, "items")
    df = rows(con, raw)
    assert df["item_id"].tolist() == ["1", "4"]
    assert df["_row"].tolist() == [1, 6]
    assert json.loads(df["tags"].tolist()[1]) == ["x"]
    rej = raw.structural_rejects.set_index("location")["reason"]
    assert rej["line 3"].startswith("malformed JSON")
    assert rej["line 4"] == "expected a JSON object, found list"
    assert rej["line 5"].startswith("bad encoding")
    assert raw.n_records == 5


def test_amazon_items_and_interactions(con, write):
    items = write(
        "Toy.item.json",
        json.dumps({"0": {"title": "A", "brand": "x"}, "1": {"title": "B"}, "2": 5}),
    )
    raw = read_raw(con, items, "items")
    df = rows(con, raw)
    assert df["item_id"].tolist() == ["0", "1"]
    assert raw.structural_rejects["location"].tolist() == ["item '2'"]
    inter = write("Toy.inter.json", json.dumps({"7": [0, 1, 0], "8": "oops"}))
    raw = read_raw(con, inter, "interactions")
    df = rows(con, raw)
    assert df["item_id"].tolist() == ["0", "1", "0"]
    assert set(df["event"]) == {"review"}
    assert raw.locate(np.array([3])) == ["user '7', position 3"]
    assert "expected a list" in raw.structural_rejects["reason"].iloc[0]


def test_malformed_amazon_json_names_line(con, write):
    path = write("Toy.item.json", '{"0": {"title": "A"},\n oops}')
    with pytest.raises(DataError, match=r"Toy\.item\.json: malformed JSON at line 2"):
        read_raw(con, path, "items")
