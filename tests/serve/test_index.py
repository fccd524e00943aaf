"""The FAISS item index: exact neighbours, inserts and updates visible at once."""

from __future__ import annotations

import numpy as np

from shopaug.serve.index import ItemIndex


def vectors() -> np.ndarray:
    return np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_nearest_items_exclude_the_item_itself() -> None:
    index = ItemIndex.build(vectors())
    ids, scores = index.similar(0, 2)
    assert ids.tolist()[0] == 1 and 0 not in ids.tolist() and len(ids) == 2
    assert scores[0] > scores[1] and np.isclose(scores[0], 0.9 / np.linalg.norm([0.9, 0.1]))


def test_k_beyond_the_catalog_returns_every_other_item() -> None:
    ids, _ = ItemIndex.build(vectors()).similar(3, 50)
    assert sorted(ids.tolist()) == [0, 1, 2]


def test_insert_and_update_take_effect_at_once() -> None:
    index = ItemIndex.build(vectors())
    index.upsert(np.array([4]), np.array([[0.0, 0.1, 1.0]]))
    assert len(index) == 5 and index.similar(3, 1)[0].tolist() == [4]
    index.upsert(np.array([4]), np.array([[1.0, 0.0, -0.01]]))
    assert len(index) == 5 and index.similar(0, 1)[0].tolist() == [4]
    assert index.similar(3, 1)[0].tolist() != [4]
