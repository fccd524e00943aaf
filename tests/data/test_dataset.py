import numpy as np
import pytest

from shopaug.data.dataset import Dataset
from shopaug.data.ingest import IngestSpec, ingest


@pytest.fixture
def run_dir(tmp_path, write):
    items = write(
        "items.csv",
        "item_id,title,brand,categories,description\n"
        "A,Alpha,Acme,Tools > Saws,\n"
        "B,Beta,,Tools > Drills,Strong drill\n"
        "C,Gamma,Acme,Garden,\n"
        "D,Delta,,,\n",
    )
    events = write(
        "events.csv",
        "user_id,item_id,event,timestamp\n"
        "u1,A,view,2026-01-01T00:00:01\n"
        "u1,A,cart,2026-01-01T00:00:02\n"
        "u1,B,view,2026-01-01T00:00:03\n"
        "u2,C,purchase,2026-01-02T00:00:00\n"
        "u1,C,purchase,2026-01-01T00:00:00\n",
    )
    queries = write("queries.csv", "query,item_id\nsaw,A\nsaw,A\ndrill,B\n")
    ingest(IngestSpec(items=items, interactions=events, queries=queries), tmp_path / "run")
    return tmp_path / "run"


def test_load_orders_events_by_time(run_dir):
    ds = Dataset.load(run_dir)
    assert ds.n_items == 4 and ds.n_users == 2
    assert ds.events.to_lists() == [[2, 0, 0, 1], [2]]
    assert ds.event_types.tolist() == ["purchase", "view", "cart", "view", "purchase"]
    assert ds.timestamps is not None and len(ds.timestamps) == 5


def test_event_filter(run_dir):
    ds = Dataset.load(run_dir, events=("purchase",))
    assert ds.events.to_lists() == [[2], [2]]


def test_collapse_repeats_and_min_length(run_dir):
    ds = Dataset.load(run_dir)
    assert ds.sequences(collapse_repeats=True).to_lists() == [[2, 0, 1], [2]]
    seq = ds.sequences(min_length=2)
    assert seq.users.tolist() == ["u1"]


def test_item_texts_skip_empty_fields(run_dir):
    texts = Dataset.load(run_dir).item_texts()
    assert texts[0] == "Alpha. Acme. Tools > Saws"
    assert texts[1] == "Beta. Tools > Drills. Strong drill"
    assert texts[3] == "Delta"


def test_item_categories_levels(run_dir):
    ds = Dataset.load(run_dir)
    assert ds.item_categories().tolist() == ["Saws", "Drills", "Garden", ""]
    assert ds.item_categories(0).tolist() == ["Tools", "Tools", "Garden", ""]


def test_stats(run_dir):
    stats = Dataset.load(run_dir).stats()
    assert stats["interactions"] == 5
    assert stats["items_without_events"] == 1
    assert stats["queries"] == 3 and stats["distinct_queries"] == 2
    assert stats["events_view"] == 2
    assert stats["empty_descriptions"] == 3
    assert np.isclose(stats["density"], 5 / 8)


def test_timestamps_follow_the_sequence_selection(run_dir):
    ds = Dataset.load(run_dir)
    seq = ds.sequences(min_length=2, collapse_repeats=True)
    ts = ds.sequence_timestamps(min_length=2, collapse_repeats=True)
    assert seq.to_lists() == [[2, 0, 1]]
    assert len(ts) == seq.n_events
    assert np.all(np.diff(ts.astype("datetime64[s]").astype(np.int64)) > 0)
