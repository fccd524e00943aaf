import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from shopaug.data.errors import DataError
from shopaug.data.ingest import IngestSpec, ingest
from shopaug.data.store import DatasetStore


def make_catalog(n: int) -> str:
    return "item_id,title,price\n" + "".join(f"I{i},Item {i},{i % 50 + 0.5}\n" for i in range(n))


def test_1000_good_rows_and_10_broken_ones(tmp_path, write):
    good = [
        f"u{i % 97},I{i % 200},view,2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}"
        for i in range(1000)
    ]
    broken = [
        "u1,I1,view,not-a-date",
        "u1,I999,view,2026-01-01",
        ",I1,view,2026-01-01",
        "u1,,view,2026-01-01",
        "u1,I1,view",
        "u1,I1,view,2026-01-01,extra",
        "u2,I2,view,",
        "u3,I404,cart,2026-01-01",
        "u4,I3,view,13th of May",
        "u5,,cart,",
    ]
    lines = good[:500] + broken + good[500:]
    events = write("events.csv", "user_id,item_id,event,timestamp\n" + "\n".join(lines) + "\n")
    items = write("items.csv", make_catalog(200))
    report = ingest(IngestSpec(items=items, interactions=events), tmp_path / "run")
    t = report.table("interactions")
    assert (t.records, t.kept, t.rejected, t.duplicates) == (1010, 1000, 10, 0)
    rejects = pd.read_csv(tmp_path / "run" / "data" / "rejects.csv")
    assert rejects.drop_duplicates("location").shape[0] == 10
    assert set(rejects["location"]) == {f"line {502 + k}" for k in range(10)}
    assert rejects["reason"].notna().all()
    assert (rejects["file"] == str(events)).all()
    stored = pd.read_parquet(tmp_path / "run" / "data" / "interactions.parquet")
    assert len(stored) == 1000


def test_duplicate_events_are_removed_and_listed(tmp_path, write):
    items = write("items.csv", make_catalog(3))
    events = write(
        "events.csv",
        "user_id,item_id,event,timestamp\n"
        "a,I1,view,2026-01-01T10:00:00\n"
        "a,I1,view,2026-01-01T10:00:00\n"
        "a,I1,cart,2026-01-01T10:00:00\n"
        "a,I2,view,2026-01-01T09:00:00\n",
    )
    report = ingest(IngestSpec(items=items, interactions=events), tmp_path / "run")
    assert report.table("interactions").duplicates == 1
    assert report.table("interactions").kept == 3
    rejects = pd.read_csv(tmp_path / "run" / "data" / "rejects.csv")
    assert rejects["location"].tolist() == ["line 3"]
    assert "duplicate event" in rejects["reason"][0] and "line 2" in rejects["reason"][0]
    stored = pd.read_parquet(tmp_path / "run" / "data" / "interactions.parquet")
    # Sorted by time within the user: the 09:00 view comes first.
    assert stored["item_id"].tolist() == ["I2", "I1", "I1"]


def test_repeats_without_timestamps_are_real_events(tmp_path, write):
    items = write("items.csv", make_catalog(3))
    events = write("events.csv", "user_id,item_id\na,I1\na,I1\na,I2\n")
    report = ingest(IngestSpec(items=items, interactions=events), tmp_path / "run")
    assert report.table("interactions").kept == 3


def test_store_indices_and_manifest(tmp_path, write):
    items = write("items.csv", make_catalog(5))
    events = write("events.csv", "user_id,item_id\nzed,I4\nann,I0\nzed,I1\n")
    queries = write("queries.csv", "query,item_id,user_id\nitem four,I4,zed\nnothing,I77,ann\n")
    report = ingest(IngestSpec(items=items, interactions=events, queries=queries), tmp_path / "run")
    store = DatasetStore(tmp_path / "run")
    users = store.read("users")
    assert users["user_id"].tolist() == ["zed", "ann"]  # order of first appearance
    inter = store.read("interactions")
    assert inter["item_index"].tolist() == [4, 1, 0]
    assert inter["user_index"].tolist() == [0, 0, 1]
    assert report.table("queries").kept == 1
    assert report.n_users == 2
    manifest = store.manifest()
    assert manifest["report"]["tables"][0]["kept"] == 5
    assert set(manifest["source_sha256"]) == {"items", "interactions", "queries"}
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM queries").fetchone()[0] == 1


def test_reingest_replaces_previous_tables(tmp_path, write):
    items = write("items.csv", make_catalog(2))
    queries = write("queries.csv", "query,item_id\nx,I1\n")
    run = tmp_path / "run"
    ingest(IngestSpec(items=items, queries=queries), run)
    ingest(IngestSpec(items=items), run)
    assert not DatasetStore(run).has("queries")


def test_column_mapping_through_spec(tmp_path, write):
    items = write("items.csv", "asin,name\nB1,Widget\n")
    spec = IngestSpec(items=items, rename={"items": {"item_id": "asin", "title": "name"}})
    report = ingest(spec, tmp_path / "run")
    assert report.table("items").kept == 1


def test_amazon_spec_needs_both_files(tmp_path, write):
    write("Toy.item.json", json.dumps({"0": {"title": "A"}}))
    with pytest.raises(DataError, match=r"expected one \*\.item\.json and one \*\.inter\.json"):
        IngestSpec.amazon(tmp_path)


def test_unknown_spec_field_is_refused():
    with pytest.raises(ValueError, match="itemz"):
        IngestSpec(items="a.csv", itemz="b.csv")


@pytest.mark.realdata
def test_scientific_counts(scientific_dir, tmp_path):
    report = ingest(IngestSpec.amazon(scientific_dir), tmp_path / "sci")
    assert report.table("items").kept == 4344
    assert report.table("interactions").kept == 58492
    assert report.n_users == 8317
    assert report.rejected == 0
    items = DatasetStore(tmp_path / "sci").read("items")
    assert not items["title"].str.contains("&amp;").any()
    assert (items["description"] == "").sum() == 123
    inter = DatasetStore(tmp_path / "sci").read("interactions")
    first_user = inter[inter["user_id"] == "0"]["item_id"].tolist()
    assert first_user == [str(i) for i in range(9)]
    assert np.all(np.diff(inter["user_index"].to_numpy()) >= 0)


def test_parquet_files_ingest_like_csv(tmp_path):
    """Parquet sources go through the same validation (a DuckDB 2 result left half-read once made
    registering the text-cleaning function fail here)."""
    source = tmp_path / "src"
    source.mkdir()
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3"],
            "item_id": ["I1", "I2", "I1", "I404"],
            "event": ["view", "purchase", "view", "view"],
            "timestamp": ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"],
        }
    )
    items = pd.DataFrame({"item_id": ["I1", "I2"], "title": [" Pipette  tips ", "Beaker"]})
    events.to_parquet(source / "events.parquet")
    items.to_parquet(source / "items.parquet")
    spec = IngestSpec(items=source / "items.parquet", interactions=source / "events.parquet")
    report = ingest(spec, tmp_path / "run")
    t = report.table("interactions")
    assert (t.records, t.kept, t.rejected) == (4, 3, 1)
    stored = pd.read_parquet(tmp_path / "run" / "data" / "items.parquet")
    assert stored["title"].tolist() == ["Pipette tips", "Beaker"]


# --- issue 20 §2 -------------------------------------------------------------------------------


def test_float_parquet_timestamps_with_nan_and_huge_values_are_row_rejects(tmp_path):
    """§2.1: a float Parquet timestamp column holding NaN or 1e300 crashed ingest."""
    items = tmp_path / "items.parquet"
    events = tmp_path / "events.parquet"
    pd.DataFrame({"item_id": ["I1"], "title": ["a"]}).to_parquet(items)
    pa_table = pa.table(
        {
            "user_id": ["u1", "u2", "u3", "u4"],
            "item_id": ["I1"] * 4,
            "timestamp": pa.array([1.7e9, float("nan"), 1e300, None], type=pa.float64()),
        }
    )
    pq.write_table(pa_table, events)
    report = ingest(IngestSpec(items=items, interactions=events), tmp_path / "run")
    t = report.table("interactions")
    assert (t.records, t.kept, t.rejected) == (4, 1, 3)
    rejects = pd.read_csv(tmp_path / "run" / "data" / "rejects.csv").set_index("location")
    assert rejects.loc["row 2", "reason"].startswith("missing timestamp")  # NaN is missing
    assert rejects.loc["row 3", "reason"].startswith("implausible timestamp 1e+300")


def test_parquet_float_ids_nan_ids_and_list_categories(tmp_path):
    """§2.9: ids became '1.0' / 'nan' and list categories the string '[Tools, Widgets]'."""
    items = tmp_path / "items.parquet"
    pd.DataFrame(
        {
            "item_id": [1.0, 2.0, np.nan],
            "title": ["a", "b", "c"],
            "categories": [["Tools", "Widgets"], ["Home"], ["X"]],
        }
    ).to_parquet(items)
    events = tmp_path / "events.parquet"
    pd.DataFrame({"user_id": [7.0, 8.0], "item_id": [1.0, 2.0]}).to_parquet(events)
    report = ingest(IngestSpec(items=items, interactions=events), tmp_path / "run")
    assert (report.table("items").kept, report.table("items").rejected) == (2, 1)
    assert report.table("interactions").kept == 2  # '1' matches '1', not '1.0'
    store = DatasetStore(tmp_path / "run")
    stored = store.read("items")
    assert stored["item_id"].tolist() == ["1", "2"]
    assert stored["categories"].tolist() == ["Tools > Widgets", "Home"]
    assert store.read("users")["user_id"].tolist() == ["7", "8"]
    rejects = pd.read_csv(store.rejects_path)
    assert rejects[["location", "column", "reason"]].values.tolist() == [
        ["row 3", "item_id", "empty item_id"]
    ]


def test_extra_event_and_query_columns_are_kept_and_reported(tmp_path, write):
    """§2.9: extra interaction columns disappeared without notice."""
    items = write("items.csv", make_catalog(2))
    events = write("events.csv", "user_id,item_id,session\nu,I1,s1\nu,I0,s2\n")
    queries = write("queries.csv", "query,item_id,source\nmug,I1,app\n")
    report = ingest(IngestSpec(items=items, interactions=events, queries=queries), tmp_path / "r")
    assert report.table("interactions").attributes == ["session"]
    assert report.table("queries").attributes == ["source"]
    store = DatasetStore(tmp_path / "r")
    assert store.read("interactions")["session"].tolist() == ["s1", "s2"]
    assert store.read("queries")["source"].tolist() == ["app"]
    assert store.manifest()["report"]["tables"][1]["attributes"] == ["session"]


def test_sources_inside_the_run_folder_are_recorded_relative_to_it(tmp_path):
    """§2.10: the pipeline's stage cache builds the demo in ``cache/ingest/.<key>.tmp/`` (source
    files included) and renames it into place; rejects.csv and ingest.json pointed into the
    temporary folder once it was gone."""
    building = tmp_path / "cache" / "ingest" / ".abc123.tmp"
    source = building / "source"
    source.mkdir(parents=True)
    (source / "items.csv").write_text("item_id,title\n1,A\n2,\n")
    ingest(IngestSpec(items=source / "items.csv"), building)
    final = building.with_name("abc123")
    os.replace(building, final)
    store = DatasetStore(final)
    rejects = pd.read_csv(store.rejects_path)
    assert rejects["file"].tolist() == [str(Path("source") / "items.csv")]
    manifest = store.manifest()
    assert manifest["spec"]["items"] == str(Path("source") / "items.csv")
    assert manifest["report"]["tables"][0]["file"] == str(Path("source") / "items.csv")
    assert ".tmp" not in json.dumps(manifest)
    assert (final / rejects["file"][0]).exists()


def test_a_file_as_the_run_folder_is_an_error(tmp_path, write):
    """§2.4: --out naming an existing file raised NotADirectoryError."""
    items = write("items.csv", make_catalog(1))
    taken = write("taken", "")
    with pytest.raises(DataError, match=r"taken: exists and is not a folder"):
        ingest(IngestSpec(items=items), taken)


def test_an_unknown_encoding_is_refused_by_the_spec():
    """§2.4: --encoding bogus raised LookupError from deep in the JSON lines reader."""
    with pytest.raises(ValidationError, match="unknown encoding"):
        IngestSpec(items="a.jsonl", encoding="bogus")
