"""The demo shop must look like a real shop's export and carry structure a model can learn.

Most tests share one small shop (800 items, 500 users); the learnable-structure test uses the
default size, because that is what ``shopaug demo`` trains on.
"""

from __future__ import annotations

import fnmatch
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from shopaug.data.demo_shop import (
    VOCABULARY_DIR,
    WORD_POOLS,
    DemoShop,
    DemoShopConfig,
    DemoVocabulary,
    demo_vocabulary,
    generate_demo_shop,
    write_demo_shop,
)
from shopaug.data.schema import INTERACTIONS, ITEMS, QUERIES, split_categories

SMALL = DemoShopConfig(n_items=800, n_users=500)


@pytest.fixture(scope="module")
def shop() -> DemoShop:
    return generate_demo_shop(SMALL)


@pytest.fixture(scope="module")
def default_shop() -> DemoShop:
    return generate_demo_shop()


def _frames(shop: DemoShop) -> dict[str, pd.DataFrame]:
    return {"items": shop.items, "interactions": shop.interactions, "queries": shop.queries}


def test_same_config_gives_identical_shop(shop: DemoShop) -> None:
    again = generate_demo_shop(SMALL.model_copy())
    for name, frame in _frames(shop).items():
        pd.testing.assert_frame_equal(frame, _frames(again)[name], obj=name)


def test_other_seed_gives_other_shop(shop: DemoShop) -> None:
    other = generate_demo_shop(SMALL.model_copy(update={"seed": 1}))
    assert not shop.items["title"].equals(other.items["title"])
    assert not shop.interactions["item_id"].equals(other.interactions["item_id"])


def test_columns_follow_the_schema(shop: DemoShop) -> None:
    assert list(shop.items.columns) == [*ITEMS.column_names, "listed_at"]
    assert list(shop.interactions.columns) == INTERACTIONS.column_names
    assert list(shop.queries.columns) == QUERIES.column_names
    for frame in (shop.interactions, shop.queries):
        assert pd.api.types.is_datetime64_any_dtype(frame["timestamp"])
    assert pd.api.types.is_datetime64_any_dtype(shop.items["listed_at"])


def test_ids_are_unique_padded_strings(shop: DemoShop) -> None:
    items, inter = shop.items, shop.interactions
    assert items["item_id"].is_unique
    assert items["item_id"].str.fullmatch(r"I\d{6}").all()
    assert inter["user_id"].str.fullmatch(r"U\d{6}").all()
    assert inter["user_id"].nunique() == SMALL.n_users  # every user has at least one session
    tiny = generate_demo_shop(DemoShopConfig(n_items=50, n_users=10))  # the smallest allowed
    assert tiny.items["item_id"].iloc[0] == "I000001"


def test_every_event_and_query_names_a_known_item(shop: DemoShop) -> None:
    known = set(shop.items["item_id"])
    assert set(shop.interactions["item_id"]) <= known
    assert set(shop.queries["item_id"]) <= known
    assert set(shop.queries["user_id"]) <= set(shop.interactions["user_id"])


def test_interactions_are_sorted_by_user_then_time(shop: DemoShop) -> None:
    inter = shop.interactions
    resorted = inter.sort_values(["user_id", "timestamp"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(inter.reset_index(drop=True), resorted)
    span = inter["timestamp"].max() - inter["timestamp"].min()
    assert pd.Timedelta(days=80) < span < pd.Timedelta(days=100)


def test_new_items_have_no_events_and_are_the_newest(shop: DemoShop) -> None:
    items = shop.items
    touched = set(shop.interactions["item_id"]) | set(shop.queries["item_id"])
    cold = ~items["item_id"].isin(touched)
    assert cold.sum() == round(SMALL.new_item_share * SMALL.n_items)
    assert (items.loc[cold, "listed_at"] > shop.interactions["timestamp"].max()).all()
    # ids follow the listing date, so the cold items are the last ids of the catalog
    assert items["listed_at"].is_monotonic_increasing
    assert cold.to_numpy()[-cold.sum() :].all()


def test_no_event_before_its_item_was_listed(shop: DemoShop) -> None:
    listed = shop.items.set_index("item_id")["listed_at"]
    inter = shop.interactions
    assert (inter["timestamp"].to_numpy() >= listed.loc[inter["item_id"]].to_numpy()).all()


def test_event_mix_and_purchases_follow_views(shop: DemoShop) -> None:
    inter = shop.interactions
    share = inter["event"].value_counts(normalize=True)
    assert set(share.index) == {"view", "cart", "purchase"}
    assert share["view"] > 0.8 and share["view"] > share["cart"] > share["purchase"] > 0.005
    views = inter[inter["event"] == "view"].sort_values("timestamp")
    buys = inter[inter["event"] == "purchase"].sort_values("timestamp")
    matched = pd.merge_asof(
        buys,
        views.assign(viewed=views["timestamp"]),
        on="timestamp",
        by=["user_id", "item_id"],
        tolerance=pd.Timedelta(hours=8),  # within the session: sessions last minutes to hours
        allow_exact_matches=False,
    )
    assert matched["viewed"].notna().all()


def test_some_events_are_fired_twice(shop: DemoShop) -> None:
    duplicated = shop.interactions.duplicated().mean()
    assert 0 < duplicated < 3 * SMALL.duplicate_event_share


def test_catalog_text_prices_and_categories(default_shop: DemoShop) -> None:
    items = default_shop.items
    paths = items["categories"].map(split_categories)
    assert (paths.map(len) == 3).all()
    assert paths.str[0].nunique() >= 6
    assert paths.map(tuple).nunique() > 100
    assert items["brand"].nunique() > 50
    assert (items["price"] > 0).all()
    assert items["title"].nunique() > 0.9 * len(items)
    html = items["title"].str.contains("&amp;", regex=False)
    html |= items["description"].str.contains("<br>", regex=False)
    assert 0.01 < html.mean() < 0.06  # html_share 0.03
    by_type = items.groupby("categories")["price"]
    assert (by_type.median().max() / by_type.median().min()) > 20  # a TV is not a sock


def test_queries_repeat_and_match_several_items(default_shop: DemoShop) -> None:
    queries = default_shop.queries
    assert set(queries["event"]) == {"click", "purchase"}
    clicks = queries[queries["event"] == "click"]
    per_query = clicks.groupby("query").agg(
        n=("item_id", "size"), items=("item_id", "nunique"), users=("user_id", "nunique")
    )
    head = per_query.sort_values("n", ascending=False).head(20)
    assert (head["items"] >= 3).all() and (head["users"] >= 3).all()
    assert (per_query["n"] == 1).mean() > 0.3  # a long tail as well
    cfg = DemoShopConfig()
    sessions = cfg.n_users * cfg.mean_sessions_per_user
    assert 0.5 * cfg.query_share < len(clicks) / sessions < 2 * cfg.query_share
    titles = default_shop.items.set_index("item_id")["title"].str.lower()
    shared = [
        any(word in title for word in query.split())
        for query, title in zip(clicks["query"], titles.loc[clicks["item_id"]], strict=True)
    ]
    assert np.mean(shared) > 0.9  # queries come from the clicked item's text


def _user_sequences(inter: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Time-ordered item codes per user, consecutive repeats (view, cart, buy) collapsed."""
    users = inter["user_id"].to_numpy()
    catalog, items = np.unique(inter["item_id"].to_numpy(), return_inverse=True)
    keep = np.r_[True, (users[1:] != users[:-1]) | (items[1:] != items[:-1])]
    return users[keep], items[keep], len(catalog)


def _hit_rates(inter: pd.DataFrame, k: int = 10) -> tuple[float, float]:
    """HitRate@k of popularity and of a first-order transition model, leave-last-out."""
    users, items, n_items = _user_sequences(inter)
    first = np.r_[True, users[1:] != users[:-1]]
    last = np.r_[users[1:] != users[:-1], True]
    test = np.flatnonzero(last & ~first)
    train = ~last
    popularity = np.bincount(items[train], minlength=n_items)
    top = np.argsort(-popularity, kind="stable")[:k]
    targets, previous = items[test], items[test - 1]
    pop_hr = float(np.isin(targets, top).mean())

    pairs = np.flatnonzero(train[:-1] & train[1:] & ~first[1:])
    pair_code = items[pairs].astype(np.int64) * n_items + items[pairs + 1]
    codes, counts = np.unique(pair_code, return_counts=True)
    src, dst = codes // n_items, codes % n_items
    order = np.lexsort((-popularity[dst], -counts, src))  # best successors first
    src, dst = src[order], dst[order]
    ptr = np.searchsorted(src, np.arange(n_items + 1))
    hits = 0
    for target, prev in zip(targets, previous, strict=True):
        successors = dst[ptr[prev] : ptr[prev + 1]][:k]
        backfill = top[~np.isin(top, successors)][: k - len(successors)]
        hits += target in successors or target in backfill
    return pop_hr, hits / len(test)


def test_sequences_beat_popularity(default_shop: DemoShop) -> None:
    popularity, transitions = _hit_rates(default_shop.interactions)
    assert popularity > 0.005  # popularity is a real baseline, not zero
    assert transitions > 2 * popularity, (transitions, popularity)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_write_and_read_back(shop: DemoShop, tmp_path, fmt: str) -> None:
    paths = write_demo_shop(shop, tmp_path / "demo", fmt=fmt)  # type: ignore[arg-type]
    assert set(paths) == {"items", "interactions", "queries"}
    readers = {
        "csv": pd.read_csv,
        "parquet": pd.read_parquet,
        "jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
    }
    for name, frame in _frames(shop).items():
        assert paths[name].name == f"{name}.{fmt}"
        back = readers[fmt](paths[name])
        assert list(back.columns) == list(frame.columns)
        assert back["item_id"].astype(str).tolist() == frame["item_id"].tolist()
        stamp = "listed_at" if name == "items" else "timestamp"
        assert (pd.to_datetime(back[stamp]).to_numpy() == frame[stamp].to_numpy()).all()
    items_back = readers[fmt](paths["items"])
    np.testing.assert_allclose(items_back["price"], shop.items["price"])
    assert items_back["title"].tolist() == shop.items["title"].tolist()


def test_progress_is_reported_in_order() -> None:
    calls: list[tuple[str, float]] = []
    generate_demo_shop(
        DemoShopConfig(n_items=200, n_users=100), progress=lambda s, f: calls.append((s, f))
    )
    fractions = [f for _, f in calls]
    assert 3 <= len(calls) <= 30
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"catalog", "sessions", "tables"} <= {s for s, _ in calls}


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        DemoShopConfig(n_item=10)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        DemoShopConfig(n_items=10)
    with pytest.raises(ValidationError):
        DemoShopConfig(start="not a date")


def test_knobs_can_be_switched_off() -> None:
    cfg = DemoShopConfig(
        n_items=300,
        n_users=100,
        query_share=0,
        duplicate_event_share=0,
        html_share=0,
        new_item_share=0,
    )
    quiet = generate_demo_shop(cfg)
    assert quiet.queries.empty and list(quiet.queries.columns) == QUERIES.column_names
    assert not quiet.interactions.duplicated().any()
    assert not quiet.items["title"].str.contains("&amp;", regex=False).any()
    assert quiet.items["item_id"].isin(quiet.interactions["item_id"]).all()


def test_vocabulary_loads_from_package_data() -> None:
    folder = resources.files("shopaug.data").joinpath(VOCABULARY_DIR)
    shipped = {f.name for f in folder.iterdir() if f.name.endswith(".yaml")}
    assert shipped == {f"{name}.yaml" for name in DemoVocabulary.model_fields}
    vocab = demo_vocabulary()
    assert vocab is demo_vocabulary()  # read once
    assert len(vocab.categories) >= 5 and len(vocab.nouns) >= 100
    for dept in vocab.categories.values():
        for sub in dept.subcategories.values():
            assert sub.nouns and sub.attributes and sub.median_price > 0
            assert all(dept.pool(key, sub) for key in WORD_POOLS)
    nouns = set(vocab.nouns)
    assert set(vocab.complements) <= nouns
    assert {t for targets in vocab.complements.values() for t in targets} <= nouns
    assert set(vocab.plurals) <= nouns
    assert vocab.brands.syllables and vocab.brands.reserved
    assert sum(k.share for k in vocab.queries.kinds.values()) > 0


def test_every_shop_category_and_brand_comes_from_the_vocabulary(shop: DemoShop) -> None:
    vocab = demo_vocabulary()
    for path in shop.items["categories"].unique():
        dept, sub, _leaf = path.split(" > ")
        assert sub in vocab.categories[dept].subcategories, path
    brands = pd.Series(shop.items["brand"].unique())
    assert not set(brands) & set(vocab.brands.reserved)
    made_of_syllables = f"(?:{'|'.join(vocab.brands.syllables)}){{2,3}}"
    assert brands.str.lower().str.fullmatch(made_of_syllables).all()


def test_vocabulary_files_are_in_the_wheel() -> None:
    """``pyproject.toml``'s package data must match every file, or a wheel ships without them."""
    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]["shopaug"]
    folder = root / "src" / "shopaug" / "data" / VOCABULARY_DIR
    for path in folder.iterdir():
        relative = path.relative_to(root / "src" / "shopaug").as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_broken_vocabulary_fails_loudly() -> None:
    good = demo_vocabulary().model_dump()
    bare_no = {**good, "brands": {**good["brands"], "syllables": ["ka", False]}}  # YAML `no`
    with pytest.raises(ValidationError, match="syllables"):
        DemoVocabulary.model_validate(bare_no)
    unknown = {**good, "complements": {**good["complements"], "Laptop": ["Flux Capacitor"]}}
    with pytest.raises(ValidationError, match="Flux Capacitor"):
        DemoVocabulary.model_validate(unknown)
    dept = next(iter(good["categories"]))
    typo = {**good["categories"][dept], "adjectivs": ["Smart"]}
    with pytest.raises(ValidationError, match="adjectivs"):
        DemoVocabulary.model_validate({**good, "categories": {**good["categories"], dept: typo}})
