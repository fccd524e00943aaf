"""The model registry, and the Recommender contract checked on every registered model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopaug.data.sequences import Sequences
from shopaug.models import MODELS, make_model
from shopaug.models.base import ItemSide, Recommender, TrainData

N_ITEMS = 12
#: Every registered model, with parameters that fit in well under a second; a new model joins
#: the contract tests with one entry here (a test fails until it does).
FAST: dict[str, dict] = {
    "pop": {},
    "pop-category": {},
    "itemknn": {},
    "markov": {"order": 2},
    "als": {"factors": 4, "iterations": 3, "num_threads": 1},
    "bpr": {"factors": 4, "iterations": 3, "num_threads": 1},
    "sasrec": {"hidden": 8, "n_heads": 1, "epochs": 2, "num_threads": 1},
    "content": {"hidden": 8, "n_heads": 1, "epochs": 2, "num_threads": 1},
    # Fixed weights: the contract data has no validation cases to choose them on.
    "blend": {
        "models": ["markov", "sasrec"],
        "params": {"sasrec": {"hidden": 8, "n_heads": 1, "epochs": 2, "num_threads": 1}},
        "weights": [0.5],
        "combine": "mixture",
    },
}


def random_data(weighted: bool = False) -> TrainData:
    """30 random users; ``weighted`` gives every event a weight of 0, 0.5 or 1."""
    rng = np.random.default_rng(0)
    rows = [rng.integers(0, N_ITEMS, size=rng.integers(2, 7)).tolist() for _ in range(30)]
    weights = None
    if weighted:
        weights = [rng.choice([0.0, 0.5, 1.0], size=len(r)).tolist() for r in rows]
    seqs = Sequences.from_lists(list(range(30)), rows, weights)
    categories = np.array(list("aabbccddeeff"), dtype=object)
    embeddings = np.random.default_rng(1).normal(size=(N_ITEMS, 6)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    side = ItemSide(categories=categories, embeddings=embeddings)
    return TrainData(seqs, N_ITEMS, items=side)


HISTORIES = Sequences.from_lists([0, 1, 2], [[0, 1, 2], [5], []])


@pytest.fixture(params=sorted(FAST))
def name(request) -> str:
    return request.param


def test_registry_names_match_the_classes() -> None:
    assert set(FAST) == set(MODELS)
    for key, cls in MODELS.items():
        assert issubclass(cls, Recommender) and cls.name == key


def test_make_model_passes_parameters_and_lists_known_names_on_error() -> None:
    model = make_model("itemknn", neighbors=7)
    assert model.get_params()["neighbors"] == 7
    with pytest.raises(ValueError, match=r"unknown model 'nope'.*itemknn.*markov"):
        make_model("nope")


def test_scores_are_float32_rows_by_catalog(name: str) -> None:
    model = make_model(name, **FAST[name]).fit(random_data())
    scores = model.score(HISTORIES)
    assert scores.shape == (3, N_ITEMS) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    assert model.n_items_ == N_ITEMS


def test_scoring_before_fit_fails_clearly(name: str) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        make_model(name).score(HISTORIES)


def test_recommend_excludes_seen_items(name: str) -> None:
    model = make_model(name, **FAST[name]).fit(random_data())
    items, scores = model.recommend(HISTORIES, k=5)
    assert items.shape == (3, 5)
    assert not set(items[0]) & {0, 1, 2} and 5 not in items[1]
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_save_load_round_trip_gives_identical_scores(name: str, tmp_path: Path) -> None:
    model = make_model(name, **FAST[name]).fit(random_data())
    model.save(tmp_path / "model.pkl")
    loaded = type(model).load(tmp_path / "model.pkl")
    np.testing.assert_array_equal(loaded.score(HISTORIES), model.score(HISTORIES))
    assert loaded.get_params() == model.get_params()


def test_weight_zero_events_are_as_good_as_absent(name: str) -> None:
    weighted = random_data(weighted=True)
    dropped = weighted.sequences.select_events(weighted.sequences.weights > 0)
    data = TrainData(dropped, N_ITEMS, items=weighted.items)
    first = make_model(name, **FAST[name]).fit(weighted).score(HISTORIES)
    second = make_model(name, **FAST[name]).fit(data).score(HISTORIES)
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)


def test_parameters_round_trip_through_the_registry(name: str) -> None:
    model = make_model(name, **FAST[name])
    assert make_model(name, **model.get_params()).get_params() == model.get_params()


def test_only_models_that_rank_by_text_declare_catalog_updates() -> None:
    """Serving gives new and changed items to exactly the models that declare they take them."""
    from shopaug.models import KnowsItemsByText

    declaring = {n for n, cls in MODELS.items() if issubclass(cls, KnowsItemsByText)}
    assert declaring == {"content"}
