import datetime as dt

import duckdb
import pytest

from shopaug.data.errors import DataError
from shopaug.data.readers import read_raw
from shopaug.data.schema import INTERACTIONS, ITEMS
from shopaug.data.store import connect
from shopaug.data.validation import TimeRange, validate


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return connect()


def check(con, path, spec):
    return validate(con, read_raw(con, path, spec.name), spec)


def reasons(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for loc, reason in zip(result.rejects["location"], result.rejects["reason"]):
        out.setdefault(loc, []).append(reason)
    return out


def test_missing_required_column_names_file_and_suggests_mapping(con, write):
    path = write("items.csv", "item_id,titel\n1,A\n")
    with pytest.raises(DataError) as err:
        check(con, path, ITEMS)
    message = str(err.value)
    assert "items.csv" in message
    assert "missing required column 'title'" in message
    assert "--map items.title=titel" in message  # the form --map accepts (issue 20 §2.6)


def test_value_problems_are_rejected_with_reasons(con, write):
    path = write(
        "items.csv",
        "item_id,title,price\n"
        "1,Good,3.5\n"
        "2,,4\n"
        "3,Bad price,abc\n"
        "4,Neg,-1\n"
        "5,<br>,1\n"
        ",No id,1\n"
        "6,Inf,inf\n",
    )
    result = check(con, path, ITEMS)
    assert result.n_kept == 1
    r = reasons(result)
    assert r["line 3"] == ["empty title"]
    assert r["line 4"] == ["not a number: abc"]
    assert r["line 5"] == ["negative price: -1"]
    assert r["line 6"] == ["empty title"]  # markup only: empty once cleaned
    assert r["line 7"] == ["empty item_id"]
    assert r["line 8"] == ["not a finite number: inf"]
    assert set(result.rejects["column"]) == {"title", "price", "item_id"}


def test_a_row_with_several_problems_lists_each(con, write):
    path = write("items.csv", "item_id,title,price\n,,x\n")
    result = check(con, path, ITEMS)
    assert sorted(result.rejects["reason"]) == ["empty item_id", "empty title", "not a number: x"]


def test_duplicate_ids_point_back_to_the_first(con, write):
    path = write("items.csv", "item_id,title\n1,A\n2,B\n1,C\n")
    result = check(con, path, ITEMS)
    assert result.n_kept == 2
    assert reasons(result) == {"line 4": ["duplicate item_id 1 (first at line 2)"]}


def test_a_duplicate_of_a_rejected_row_is_kept(con, write):
    path = write("items.csv", "item_id,title\n1,\n1,Real\n")
    result = check(con, path, ITEMS)
    assert result.n_kept == 1
    assert reasons(result) == {"line 2": ["empty title"]}


def test_text_is_cleaned_and_ids_trimmed(con, write):
    path = write("items.csv", "item_id,title,description\n 7 ,Salt &amp; Pepper,<p>Fine</p>\n")
    result = check(con, path, ITEMS)
    row = con.execute(f"SELECT item_id, title, description FROM {result.relation}").fetchone()
    assert row == ("7", "Salt & Pepper", "Fine")


def test_absent_optional_columns_get_defaults_and_extras_are_kept(con, write):
    path = write("items.csv", "item_id,title,color\n1,A,red\n")
    result = check(con, path, ITEMS)
    df = con.execute(f"SELECT * FROM {result.relation}").fetchdf()
    assert df.loc[0, "brand"] == ""
    assert df.loc[0, "color"] == "red"
    assert df["price"].isna().all()


def test_unknown_item_in_interactions(con, write):
    check(con, write("items.csv", "item_id,title\n1,A\n"), ITEMS)
    path = write("events.csv", "user_id,item_id,event\nu,1,VIEW\nu,9,view\n")
    result = check(con, path, INTERACTIONS)
    assert result.n_kept == 1
    assert reasons(result) == {"line 3": ["unknown item_id 9 (not in items)"]}
    event = con.execute(f"SELECT event FROM {result.relation}").fetchone()[0]
    assert event == "view"


def test_timestamps_iso_and_epoch_and_bad(con, write):
    check(con, write("items.csv", "item_id,title\n1,A\n"), ITEMS)
    path = write(
        "events.csv",
        "user_id,item_id,timestamp\n"
        "u,1,2026-01-02T03:04:05\n"
        "u,1,1767323045\n"
        "u,1,1767323045000\n"
        "u,1,yesterday\n"
        "u,1,\n",
    )
    result = check(con, path, INTERACTIONS)
    ts = con.execute(
        f"SELECT CAST(timestamp AS VARCHAR) FROM {result.relation} ORDER BY _row"
    ).fetchall()
    assert [t[0] for t in ts] == ["2026-01-02 03:04:05"] * 3
    r = reasons(result)
    assert r["line 5"][0].startswith("not a timestamp")
    assert r["line 6"][0].startswith("missing timestamp")
    events = con.execute(f"SELECT DISTINCT event FROM {result.relation}").fetchall()
    assert events == [("interaction",)]


# --- issue 20 §2 -------------------------------------------------------------------------------


def event_reasons(con, write, *timestamps: str) -> tuple[list[str], dict[str, list[str]]]:
    """Validate one event per timestamp; the kept timestamps and the reasons by location."""
    check(con, write("items.csv", "item_id,title\n1,A\n"), ITEMS)
    body = "".join(f"u,1,{t}\n" for t in timestamps)
    result = check(con, write("events.csv", "user_id,item_id,timestamp\n" + body), INTERACTIONS)
    kept = con.execute(
        f"SELECT CAST(timestamp AS VARCHAR) FROM {result.relation} ORDER BY _row"
    ).fetchall()
    return [k[0] for k in kept], reasons(result)


def test_nan_and_huge_timestamps_are_row_rejects_not_a_crash(con, write):
    """§2.1: DuckDB raised 'Epoch seconds out of range' for the whole file."""
    kept, r = event_reasons(con, write, "2025-01-01", "NaN", "1e300", "1e22", "inf", "-1e300")
    assert kept == ["2025-01-01 00:00:00"]
    assert r["line 3"] == [
        "not a timestamp (ISO 8601, or epoch seconds or milliseconds, expected): NaN"
    ]
    assert r["line 4"][0].startswith("implausible timestamp 1e300 (read as epoch milliseconds")
    assert r["line 5"][0].startswith("implausible timestamp 1e22")
    assert r["line 6"][0].startswith("not a timestamp")
    assert r["line 7"][0].startswith("implausible timestamp -1e300")


def test_implausible_timestamps_are_rejected_with_a_unit_hint(con, write):
    """§2.7: -1, the year 3000 and microseconds read as milliseconds were accepted silently."""
    kept, r = event_reasons(
        con,
        write,
        "1735689600",  # 2025-01-01 in seconds
        "1735689600000",  # ... in milliseconds
        "-1",
        "3000-01-01",
        "1735689600000000",  # microseconds: 56972 as milliseconds
        "1735689600000000000",  # nanoseconds
        "1989-12-31T23:59:59Z",
    )
    assert kept == ["2025-01-01 00:00:00"] * 2
    assert r["line 4"] == [
        "implausible timestamp -1 (read as epoch seconds: 1969-12-31; accepted: "
        f"{TimeRange.around().text()})"
    ]
    assert r["line 5"][0].startswith("implausible timestamp 3000-01-01 (3000-01-01; accepted: 1990")
    assert r["line 6"][0].startswith(
        "implausible timestamp 1735689600000000 (read as epoch milliseconds: 56971-"
    )
    assert r["line 6"][0].endswith("; it looks like epoch microseconds")
    assert r["line 7"][0].endswith("; it looks like epoch nanoseconds")
    assert "implausible" in r["line 8"][0]


def test_the_plausible_range_follows_the_ingest_date():
    now = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
    assert TimeRange.around(now).text() == "1990-01-01 to 2031-06-02"


def test_category_lists_become_paths(con, write):
    """§2.9: a JSON/Parquet list of categories was stored as the text '["Tools", "Widgets"]'."""
    path = write(
        "items.jsonl",
        '{"item_id": "1", "title": "A", "categories": ["Tools", "Widgets"]}\n'
        '{"item_id": "2", "title": "B", "categories": "Home > Kitchen"}\n',
    )
    result = check(con, path, ITEMS)
    paths = con.execute(f"SELECT categories FROM {result.relation} ORDER BY _row").fetchall()
    assert [p[0] for p in paths] == ["Tools > Widgets", "Home > Kitchen"]


def test_extra_event_columns_are_kept(con, write):
    """§2.9: extra interaction columns disappeared without notice."""
    check(con, write("items.csv", "item_id,title\n1,A\n"), ITEMS)
    path = write("events.csv", "user_id,item_id,session,device\nu,1,s1,phone\n")
    result = check(con, path, INTERACTIONS)
    assert result.attributes == ["session", "device"]
    row = con.execute(f"SELECT session, device FROM {result.relation}").fetchone()
    assert row == ("s1", "phone")


def test_a_file_whose_every_record_is_broken_says_so(con, write):
    path = write("items.jsonl", "not json\n{broken\n")
    with pytest.raises(DataError, match=r"none of its 2 records could be read \(line 1: malformed"):
        check(con, path, ITEMS)
