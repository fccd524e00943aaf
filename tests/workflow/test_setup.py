"""From a data folder to training data: what a model may see, and clear errors for bad sources."""

import numpy as np
import pytest

from shopaug.data.errors import DataError
from shopaug.workflow import DataSetup, load_dataset, prepare_training, split_dataset


def test_training_data_is_the_split_training_rows_with_validation_for_early_stopping(shop_run):
    setup = DataSetup(data=shop_run, protocol="C", embed_items=False)
    split, train = prepare_training(setup)
    assert train.sequences is split.train and train.valid is split.valid
    assert train.n_items == split.n_items and train.items is not None
    assert train.items.embeddings is None and len(train.items.texts) == split.n_items
    # Protocol C: no training row holds a cold item, so no cold target leaks into training.
    assert not np.isin(train.sequences.items, split.cold_items).any()


def test_the_split_is_a_seeded_function_of_the_data(shop_run):
    dataset = load_dataset(shop_run)
    first, again = (split_dataset(dataset, "C", seed=1) for _ in range(2))
    other = split_dataset(dataset, "C", seed=2)
    np.testing.assert_array_equal(first.cold_items, again.cold_items)
    assert not np.array_equal(first.cold_items, other.cold_items)


def test_events_filter_the_loaded_interactions(shop_run):
    everything = load_dataset(shop_run)
    purchases = load_dataset(shop_run, events=["purchase"])
    assert 0 < len(purchases.events.items) < len(everything.events.items)


def test_a_folder_that_is_neither_a_run_nor_amazon_data_is_named(tmp_path):
    with pytest.raises(DataError, match="not a run folder"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: not a run folder"):
        load_dataset(tmp_path / "empty")


def test_unknown_setup_keys_are_refused():
    with pytest.raises(ValueError, match="protocl"):
        DataSetup(data="x", protocl="W")


def test_item_embeddings_follow_the_setups_encoder_settings(shop_run, monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path))
    setup = DataSetup(data=shop_run, encoder_backend="onnx-int8", encoder_max_length=32)
    _, int8 = prepare_training(setup)
    _, reference = prepare_training(DataSetup(data=shop_run))
    cosine = np.sum(int8.items.embeddings * reference.items.embeddings, axis=1)
    # int8 and cut at 32 tokens: near the float vectors of the whole text, and not served by them
    assert 0.85 < cosine.mean() < 0.99999
    with pytest.raises(ValueError, match="encoder_backend"):
        DataSetup(data=shop_run, encoder_backend="gpu")
