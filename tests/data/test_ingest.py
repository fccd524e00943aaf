import json

import numpy as np
import pandas as pd
import pytest

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
