import gzip
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


def test_csv_with_multiline_records_reports_physical_lines(con, write):
    """Issue 20 §2.5: a quoted line break used to turn every location into 'record N'."""
    path = write("items.csv", 'item_id,title\n1,"two\nlines"\n2,B\n3\n')
    raw = read_raw(con, path, "items")
    df = rows(con, raw)
    assert df["title"].tolist() == ["two\nlines", "B"]
    assert raw.locate(df["_row"].to_numpy()) == ["line 2", "line 4"]
    assert raw.structural_rejects["location"].tolist() == ["line 5"]


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


# --- issue 20 §2: defects found with a bad-input corpus ----------------------------------------


def staged(con, raw) -> tuple[list[str], dict[str, str]]:
    """The kept ids with their locations, and the rejects as location → reason."""
    df = rows(con, raw)
    kept = [f"{i}@{loc}" for i, loc in zip(df["item_id"], raw.locate(df["_row"].to_numpy()))]
    rejects = raw.structural_rejects
    assert rejects["location"].is_unique  # one line per bad record (§2.5)
    return kept, dict(zip(rejects["location"], rejects["reason"]))


def test_a_broken_quote_costs_only_its_own_row(con, write):
    """§2.2: the sniffer switched quoting off and rejected every row with a quoted comma."""
    path = write(
        "q.csv", 'item_id,title,price\nI1,"Mug, red",1\nI2,"Cup, blue",2\nI3,"Bowl, big,3\n'
    )
    raw = read_raw(con, path, "items")
    kept, rejects = staged(con, raw)
    assert kept == ["I1@line 2", "I2@line 3"]
    assert rows(con, raw)["title"].tolist() == ["Mug, red", "Cup, blue"]
    assert rejects == {"line 4": "bad quoting: a quoted field is never closed"}


def test_a_broken_quote_at_the_end_keeps_the_ten_good_rows(con, write):
    good = "".join(f'I{i},"Title, {i}",{i}\n' for i in range(10))
    path = write("q.csv", "item_id,title,price\n" + good + 'I10,"Bowl, big,3\n')
    kept, rejects = staged(con, read_raw(con, path, "items"))
    assert kept == [f"I{i}@line {i + 2}" for i in range(10)]
    assert list(rejects) == ["line 12"]


def test_a_broken_quote_mid_file_does_not_swallow_the_next_row(con, write):
    path = write(
        "q.csv",
        'item_id,title,price\nI1,"Mug, red",1\nI2,"Bowl, big,3\nI3,"Cup, blue",2\nI4,Fork,4\n',
    )
    kept, rejects = staged(con, read_raw(con, path, "items"))
    assert kept == ["I1@line 2", "I3@line 4", "I4@line 5"]
    assert rejects == {"line 3": "bad quoting: a quoted field is never closed"}


def test_a_3_mb_line_is_one_reject_not_a_refused_file(con, write):
    """§2.3: 'CSV Error on Line: 1' for a long line 10 used to refuse the whole file."""
    lines = [f"I{i},T{i}" for i in range(1, 13)]
    lines[8] = "I9," + "x" * 3_000_000
    path = write("items.csv", "item_id,title\n" + "\n".join(lines) + "\n")
    raw = read_raw(con, path, "items")
    kept, rejects = staged(con, raw)
    assert len(kept) == 11 and kept[-1] == "I12@line 13"
    assert list(rejects) == ["line 10"] and "line too long" in rejects["line 10"]
    assert len(raw.structural_rejects["value"].iloc[0]) < 300  # a preview, not 3 MB


def test_a_3_mb_json_line_is_one_reject(con, write):
    path = write(
        "items.jsonl",
        '{"item_id": "1", "title": "A"}\n'
        + json.dumps({"item_id": "2", "title": "x" * 3_000_000})
        + '\n{"item_id": "3", "title": "C"}\n',
    )
    kept, rejects = staged(con, read_raw(con, path, "items"))
    assert kept == ["1@line 1", "3@line 3"]
    assert "line too long" in rejects["line 2"]


def test_gzip_csv_reports_physical_lines(con, tmp_path):
    """§2.5: a gzip CSV's locations were 'record N' while its rejects said 'line N'."""
    path = tmp_path / "items.csv.gz"
    path.write_bytes(gzip.compress(b"item_id,title\n1,A\n2\n3,C\n"))
    kept, rejects = staged(con, read_raw(con, path, "items"))
    assert kept == ["1@line 2", "3@line 4"]
    assert rejects == {"line 3": "wrong number of fields (expected 2, found 1)"}


def test_multiline_fields_and_blank_lines_keep_line_numbers_consistent(con, write):
    path = write(
        "items.csv",
        'item_id,title,price\n1,"two\nlines",1\n\n2\n3,C,3\n4,"a\nb\nc",4,extra\n5,E,5\n',
    )
    kept, rejects = staged(con, read_raw(con, path, "items"))
    assert kept == ["1@line 2", "3@line 6", "5@line 10"]
    assert rejects == {
        "line 5": "wrong number of fields (expected 3, found 1)",
        "line 7": "wrong number of fields (expected 3, found 4)",  # one record of 3 lines
    }


def test_blank_lines_keep_the_fast_path_exact(con, write):
    path = write("items.csv", "item_id,title\n1,A\n\n2,B\n3\n\n4,D\n5,E,x\n6,F\n\n\n")
    kept, rejects = staged(con, read_raw(con, path, "items"))
    assert kept == ["1@line 2", "2@line 4", "4@line 7", "6@line 9"]
    assert list(rejects) == ["line 5", "line 8"]


def test_a_short_row_is_listed_once(con, write):
    """§2.5: a row missing four fields was listed once per missing field."""
    path = write(
        "items.csv", "item_id,title,brand,price,description\n1,A,b,1,d\n2\n3,C,c,3,d,x,y\n"
    )
    raw = read_raw(con, path, "items")
    assert raw.structural_rejects["location"].tolist() == ["line 3", "line 4"]
    assert raw.structural_rejects["reason"].tolist() == [
        "wrong number of fields (expected 5, found 1)",
        "wrong number of fields (expected 5, found 7)",
    ]
    assert set(raw.structural_rejects["column"]) == {"(record)"}


def test_mapping_to_an_unknown_column_is_an_error(con, write):
    """§2.6: ``items.nosuch=brand`` silently turned the brand into an attribute 'nosuch'."""
    path = write("items.csv", "item_id,title,brand\n1,A,B\n")
    with pytest.raises(DataError) as err:
        read_raw(con, path, "items", rename={"nosuch": "brand"})
    message = str(err.value)
    assert "items has no column 'nosuch'" in message
    assert "the file's columns are ['item_id', 'title', 'brand']" in message


def test_jsonl_gz_is_decompressed(con, tmp_path):
    """§2.8: a .jsonl.gz was parsed as JSON lines without decompressing."""
    path = tmp_path / "items.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"item_id": 1, "title": "A"}\n{"item_id": 2, "title": "B"}\n'))
    kept, rejects = staged(con, read_raw(con, path, "items"))
    assert kept == ["1@line 1", "2@line 2"] and not rejects


def test_amazon_item_json_gz_is_decompressed(con, tmp_path):
    path = tmp_path / "Toy.item.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"0": {"title": "A"}}).encode()))
    assert rows(con, read_raw(con, path, "items"))["title"].tolist() == ["A"]


@pytest.mark.parametrize("indent", [None, 2])
def test_amazon_object_in_a_plain_json_gets_a_hint(con, write, indent):
    """§2.8: it reported columns ['0', '1'] (or one reject per line) with no hint."""
    data = {"0": {"title": "A"}, "1": {"title": "B"}}
    path = write("catalog.json", json.dumps(data, indent=indent))
    with pytest.raises(DataError, match=r"catalog\.json: holds one JSON object keyed by id") as err:
        read_raw(con, path, "items")
    assert "<Name>.item.json" in str(err.value) and "--amazon" in str(err.value)


def test_a_json_array_gets_a_hint(con, write):
    path = write("items.json", json.dumps([{"item_id": "1", "title": "A"}], indent=2))
    with pytest.raises(DataError, match="holds one JSON array of 1 values, not JSON lines"):
        read_raw(con, path, "items")


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_an_empty_csv_says_it_is_empty(con, write, text):
    """§2.8: it reported "found ['column0']"."""
    with pytest.raises(DataError, match=r"items\.csv: the file is empty"):
        read_raw(con, write("items.csv", text), "items")


def test_parquet_float_ids_are_integers_and_nan_is_missing(con, tmp_path):
    """§2.9: float ids became '1.0' and 'nan'; list columns became '[Tools, Widgets]'."""
    path = tmp_path / "items.parquet"
    pd.DataFrame(
        {
            "item_id": [1.0, 2.5, np.nan],
            "title": ["a", "b", "c"],
            "categories": [["Tools", "Widgets"], [], None],
        }
    ).to_parquet(path)
    df = rows(con, read_raw(con, path, "items"))
    assert df["item_id"].tolist()[:2] == ["1", "2.5"] and pd.isna(df["item_id"][2])
    assert json.loads(df["categories"][0]) == ["Tools", "Widgets"]


def test_jsonl_float_ids_are_integers_and_nan_is_missing(con, write):
    path = write("items.jsonl", '{"item_id": 1.0, "title": "a"}\n{"item_id": NaN, "title": "b"}\n')
    ids = rows(con, read_raw(con, path, "items"))["item_id"]
    assert ids[0] == "1" and pd.isna(ids[1])


def test_other_encodings_are_read_line_by_line(con, write):
    path = write("items.csv", "item_id,title\n1,Café\n2,Crème\n".encode("utf-16"))
    raw = read_raw(con, path, "items", encoding="utf-16")
    assert rows(con, raw)["title"].tolist() == ["Café", "Crème"]
    cp = write("cp.csv", "item_id,title\n1,€ price\n".encode("cp1252"))
    assert rows(con, read_raw(con, cp, "items", encoding="cp1252"))["title"].tolist() == ["€ price"]


def test_a_truncated_gzip_keeps_the_lines_before_the_damage(con, tmp_path):
    data = gzip.compress(("item_id,title\n" + "".join(f"{i},T{i}\n" for i in range(2000))).encode())
    path = tmp_path / "items.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    raw = read_raw(con, path, "items")
    n_kept = len(rows(con, raw))
    assert 0 < n_kept < 2000 and raw.n_records == n_kept + 1
    assert "damaged or truncated" in raw.structural_rejects["reason"].iloc[0]
