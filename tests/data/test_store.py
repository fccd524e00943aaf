import pandas as pd
import pytest

from shopaug.data.errors import DataError
from shopaug.data.store import DatasetStore, connect


def test_require_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(DataError, match="run `shopaug ingest` first"):
        DatasetStore(tmp_path / "empty").connect()


def test_write_table_is_atomic_and_readable(tmp_path):
    store = DatasetStore(tmp_path / "run")
    con = connect()
    store.write_table(con, "items", "SELECT 0 AS item_index, 'a' AS item_id")
    assert store.has("items")
    assert not list(store.root.glob("*.tmp"))
    assert store.read("items")["item_id"].tolist() == ["a"]


def test_a_failed_write_leaves_no_file(tmp_path):
    store = DatasetStore(tmp_path / "run")
    con = connect()
    with pytest.raises(Exception, match="no_such_table"):
        store.write_table(con, "items", "SELECT * FROM no_such_table")
    assert not store.has("items")


def test_views_over_stored_tables(tmp_path):
    store = DatasetStore(tmp_path / "run")
    con = connect()
    store.write_table(con, "items", "SELECT range AS item_index FROM range(5)")
    store.write_rejects(pd.DataFrame({"reason": []}))
    store.write_manifest({"ok": True})
    with store.connect() as view:
        assert view.execute("SELECT sum(item_index) FROM items").fetchone()[0] == 10
    assert store.manifest() == {"ok": True}


def test_reading_an_absent_table_is_a_clear_error(tmp_path):
    store = DatasetStore(tmp_path / "run")
    store.write_manifest({})
    with pytest.raises(DataError, match="has no queries table"):
        store.read("queries")


def test_connection_uses_utc():
    con = connect()
    assert con.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
