"""The embedded synthetic shop behind ``shopaug demo``: a catalog, behaviour logs and a query log.

The demo must run without any downloaded data set, yet show real effects: a model that learns from
behaviour has to beat popularity, content features have to matter for new items, and cleaning has to
find something to clean. So the generator is not uniform noise but a small simulation:

* a category tree (department > subcategory > product type) read from the package data in
  ``demo_vocab/*.yaml``, with made-up brands, titles and descriptions built from its word lists,
  and log-normal prices per subcategory;
* users with latent tastes (a few preferred product types, a favourite brand per department and a
  price level);
* sessions that browse near the current item (similar price, same brand), move along a complement
  graph (camera -> lens -> tripod) or jump to another taste, with carts and checkouts;
* searches whose text comes from the clicked item (head, torso and tail queries, typos);
* a share of items listed after the log ends (real cold start), double-fired events and HTML
  entities, as real trackers and feeds have.

Everything is vectorised numpy: loops run over steps of a session, vocabulary entries or distinct
query strings, never over users or events, so 1,000,000 users and 200,000 items (about 14 million
events) take well under a minute and under 3 GB of memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, get_args

import numpy as np
import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from shopaug.data.schema import INTERACTIONS, QUERIES
from shopaug.data.sequences import rank_within_runs

# --------------------------------------------------------------------------------------------------
# Vocabulary. The words are data, not code: they live in ``demo_vocab/*.yaml`` next to this module
# (package data, one file per field of DemoVocabulary) where they read as lists and can be edited
# without touching the simulation. The models below check the files once, on first use, so a typo
# in a file fails loudly with its place named instead of producing odd titles.
# --------------------------------------------------------------------------------------------------

#: Word pools a department gives its products; a subcategory can replace any of them.
WordPool = Literal["adjectives", "materials", "uses", "features", "variants"]
WORD_POOLS: tuple[WordPool, ...] = get_args(WordPool)

#: One word or phrase. Strict, so a bare ``no`` or ``on`` that YAML reads as a boolean is an error.
_Word = Annotated[str, StringConstraints(strict=True, min_length=1)]
_Words = Annotated[tuple[_Word, ...], Field(min_length=1)]


class _VocabularyPart(BaseModel):
    """Unknown keys are typos; frozen because one cached instance is shared (dicts read-only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Subcategory(_VocabularyPart):
    """A subcategory: its products' median price, product nouns and title attributes."""

    median_price: float = Field(gt=0)
    nouns: _Words  #: one leaf category each, unique across the shop
    attributes: _Words  #: read well after the noun in a title ("Headphones Over-Ear")
    words: dict[WordPool, _Words] = Field(default_factory=dict)  #: replaces pools that do not fit


class Department(_VocabularyPart):
    """A department: the word pools its products share, and its subcategories."""

    adjectives: _Words
    materials: _Words
    uses: _Words
    features: _Words
    variants: _Words
    subcategories: dict[_Word, Subcategory] = Field(min_length=1)

    def pool(self, name: WordPool, subcategory: Subcategory) -> tuple[str, ...]:
        """The words of pool ``name`` for products of ``subcategory`` (its own, else ours)."""
        return subcategory.words.get(name, getattr(self, name))


class BrandWords(_VocabularyPart):
    """What made-up brand names are built from."""

    syllables: _Words
    reserved: _Words  #: never a brand: CSV readers take these for missing values


class QueryKind(_VocabularyPart):
    """One way of wording a search: its share of queries and the item words added to the noun."""

    share: float = Field(gt=0)
    words: tuple[Literal["brand", "adjective", "attribute", "variant"], ...]


class QueryWords(_VocabularyPart):
    """How searches are worded from the item that was then clicked."""

    kinds: dict[_Word, QueryKind] = Field(min_length=1)
    typo_share: float = Field(ge=0, le=1)
    swap_share: float = Field(ge=0, le=1)


class DemoVocabulary(_VocabularyPart):
    """All words of the demo shop. Order matters everywhere: words are drawn by position, so
    reordering a list changes the generated shop for every seed."""

    categories: dict[_Word, Department] = Field(min_length=1)
    complements: dict[_Word, _Words]  #: noun -> nouns bought with or after it
    plurals: dict[_Word, _Word]  #: irregular plural of a noun, for leaf category names
    brands: BrandWords
    queries: QueryWords

    @property
    def nouns(self) -> list[str]:
        """Every product noun in tree order (the leaves of the category tree)."""
        return [
            noun
            for dept in self.categories.values()
            for sub in dept.subcategories.values()
            for noun in sub.nouns
        ]

    @model_validator(mode="after")
    def _names_resolve(self) -> DemoVocabulary:
        """Nouns and subcategories are looked up by name, so they must be unique and known."""
        nouns = self.nouns
        subs = [s for dept in self.categories.values() for s in dept.subcategories]
        if len(set(nouns)) != len(nouns) or len(set(subs)) != len(subs):
            raise ValueError("product nouns and subcategory names must be unique in categories")
        named = {n for targets in self.complements.values() for n in targets}
        unknown = (named | set(self.complements)) - set(nouns)
        if unknown:
            raise ValueError(f"complements name unknown product nouns: {sorted(unknown)}")
        if unknown := set(self.plurals) - set(nouns):
            raise ValueError(f"plurals name unknown product nouns: {sorted(unknown)}")
        return self


#: Package folder holding one ``<field>.yaml`` per field of :class:`DemoVocabulary`.
VOCABULARY_DIR = "demo_vocab"


@cache
def demo_vocabulary() -> DemoVocabulary:
    """The demo shop's words, read once from the package data and validated.

    Read through ``importlib.resources`` so it works from a wheel and an editable install alike.
    """
    folder = resources.files("shopaug.data").joinpath(VOCABULARY_DIR)
    raw = {
        name: yaml.safe_load(folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8"))
        for name in DemoVocabulary.model_fields
    }
    try:
        return DemoVocabulary.model_validate(raw)
    except ValidationError as exc:  # the first part of each location is the file's name
        raise ValueError(f"invalid demo shop vocabulary in {folder}/*.yaml: {exc}") from None


# --------------------------------------------------------------------------------------------------
# Behaviour parameters. Chosen so that the previous item predicts the next one far better than
# global popularity does, while popularity is still a sensible baseline.
# --------------------------------------------------------------------------------------------------

LOG_DAYS = 90
MAX_STEPS = 24  #: views per session at most
CONTINUE_P = 0.76  #: chance a session goes on after each view (about 4 views per session)
#: Next-view moves: near the current item, anywhere in its product type, along the complement
#: graph, to another of the user's tastes, or back to the previous item.
MOVES = {"near": 0.40, "leaf": 0.17, "complement": 0.20, "taste": 0.18, "back": 0.05}
NEAR_OFFSETS = np.array([-4, -3, -2, -1, 1, 2, 3, 4])
NEAR_DISTANCE_COST = 0.25  #: log-weight lost per rank step away from the current item
SAME_BRAND_BONUS = 0.8  #: log-weight for staying with the brand being browsed
FAVOURITE_BRAND_BONUS = 1.0  #: log-weight for the user's favourite brand of a department
PRICE_TOLERANCE = 0.45  #: width (log price) of the range a user is comfortable with
CANDIDATES = 5  #: proposals per jump; the user picks the best fitting one
START_FROM_TASTE_P = 0.85
CART_P = 0.06
PURCHASE_GIVEN_CART_P = 0.45
EXTRA_CLICK_P = 0.6  #: chance a later result view of a search session counts as another click
_SECONDS = 24 * 3600
_MIN_SESSION_GAP_S = 1800  #: a user's sessions are at least this far apart

ProgressFn = Callable[[str, float], None]


class DemoShopConfig(BaseModel):
    """Size and knobs of the generated shop; the same config always gives the same shop."""

    model_config = ConfigDict(extra="forbid")

    n_items: int = Field(5000, ge=50)
    n_users: int = Field(3000, ge=10)
    seed: int = Field(0, ge=0)
    new_item_share: float = Field(0.08, ge=0.0, le=0.9)
    mean_sessions_per_user: float = Field(3.0, ge=1.0)
    query_share: float = Field(0.3, ge=0.0, le=1.0)
    duplicate_event_share: float = Field(0.005, ge=0.0, le=0.5)
    html_share: float = Field(0.03, ge=0.0, le=1.0)
    start: str = "2026-01-01"

    @field_validator("start")
    @classmethod
    def _parseable_start(cls, value: str) -> str:
        pd.Timestamp(value)  # raises on a malformed date, before any work is done
        return value


@dataclass
class DemoShop:
    """The three tables of a shop, in the column layout of ``shopaug.data.schema``."""

    items: pd.DataFrame
    interactions: pd.DataFrame
    queries: pd.DataFrame


# --------------------------------------------------------------------------------------------------
# Flattened vocabulary
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pool:
    """Word lists of many rows (departments, subcategories) flattened like a CSR matrix, so one
    vectorised draw picks a word for every item at once."""

    ptr: np.ndarray
    words: np.ndarray

    @classmethod
    def from_lists(cls, lists: Sequence[Sequence[str | int]]) -> _Pool:
        ptr = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in lists], out=ptr[1:])
        flat = [w for ws in lists for w in ws]
        words = np.array(flat, dtype=object if flat and isinstance(flat[0], str) else np.int64)
        return cls(ptr, words)

    def draw(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Index (into ``words``) of one uniformly drawn word of each given row."""
        start, count = self.ptr[rows], np.diff(self.ptr)[rows]
        return start + (rng.random(len(rows)) * count).astype(np.int64)


@dataclass(frozen=True)
class _Taxonomy:
    departments: tuple[str, ...]
    leaf_noun: np.ndarray  # product noun of each leaf ("Mirrorless Camera")
    leaf_path: np.ndarray  # "Electronics > Cameras > Mirrorless Cameras"
    leaf_sub: np.ndarray
    leaf_dept: np.ndarray
    leaf_plural: np.ndarray  # "These headphones are ..." rather than "This ... is"
    sub_log_price: np.ndarray
    attributes: _Pool  # rows: subcategories
    words: dict[str, _Pool]  # WORD_POOLS, rows: subcategories
    links: tuple[tuple[int, ...], ...]  # explicit complement leaves of each leaf
    noun_typos: np.ndarray  # (n_leaves, 2) misspelled lower-case nouns


def _pluralize(noun: str) -> str:
    """Leaf category name from a product noun ("Camera Lens" -> "Camera Lenses")."""
    irregular = demo_vocabulary().plurals
    if noun in irregular:
        return irregular[noun]
    if noun.endswith("s"):
        return noun if not noun.endswith(("ss", "us")) else noun + "es"
    if noun.endswith(("x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _soft_lower(text: str) -> str:
    """Lower-case the words of a phrase for use inside a sentence, keeping acronyms (USB-C, TV)."""
    return " ".join(w if w[1:2].isupper() or w[:1].isdigit() else w.lower() for w in text.split())


def _typos(noun: str) -> tuple[str, str]:
    """Two misspellings real users type: two letters swapped, one letter dropped (longest word)."""
    words = noun.lower().split()
    i = max(range(len(words)), key=lambda k: len(words[k]))
    w = words[i]
    mid = max(1, len(w) // 2)
    swapped = w[: mid - 1] + w[mid] + w[mid - 1] + w[mid + 1 :] if len(w) > 2 else w + w[-1]
    dropped = w[:-2] + w[-1] if len(w) > 3 else w + w[-1]
    first, second = (" ".join([*words[:i], t, *words[i + 1 :]]) for t in (swapped, dropped))
    return first, second


@cache
def _taxonomy() -> _Taxonomy:
    """Flatten the category tree into arrays, one row per leaf or per subcategory."""
    vocab = demo_vocabulary()
    nouns: list[str] = []
    paths: list[str] = []
    leaf_sub: list[int] = []
    sub_dept: list[int] = []
    sub_price: list[float] = []
    sub_attrs: list[tuple[str, ...]] = []
    sub_words: dict[str, list[tuple[str, ...]]] = {key: [] for key in WORD_POOLS}
    for d, (dept_name, dept) in enumerate(vocab.categories.items()):
        for sub_name, sub in dept.subcategories.items():
            for noun in sub.nouns:
                nouns.append(noun)
                paths.append(f"{dept_name} > {sub_name} > {_pluralize(noun)}")
                leaf_sub.append(len(sub_dept))
            for key in WORD_POOLS:
                sub_words[key].append(dept.pool(key, sub))
            sub_dept.append(d)
            sub_price.append(sub.median_price)
            sub_attrs.append(sub.attributes)
    leaf_of = {noun: i for i, noun in enumerate(nouns)}
    links = tuple(tuple(leaf_of[t] for t in vocab.complements.get(noun, ())) for noun in nouns)
    sub_dept_arr = np.array(sub_dept, dtype=np.int64)
    leaf_sub_arr = np.array(leaf_sub, dtype=np.int64)
    return _Taxonomy(
        departments=tuple(vocab.categories),
        leaf_noun=np.array(nouns, dtype=object),
        leaf_path=np.array(paths, dtype=object),
        leaf_sub=leaf_sub_arr,
        leaf_dept=sub_dept_arr[leaf_sub_arr],
        leaf_plural=np.array([n.endswith("s") and _pluralize(n) == n for n in nouns]),
        sub_log_price=np.log(np.array(sub_price)),
        attributes=_Pool.from_lists(sub_attrs),
        words={key: _Pool.from_lists(lists) for key, lists in sub_words.items()},
        links=links,
        noun_typos=np.array([_typos(n) for n in nouns], dtype=object),
    )


# --------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Brands:
    names: np.ndarray
    log_premium: np.ndarray  # added to the log price of the brand's items
    log_quality: np.ndarray  # added to the log popularity of the brand's items
    pools: _Pool  # rows: departments; words: brand ids, the most common brands first


@dataclass(frozen=True)
class _Items:
    """Item attributes as integer codes into the vocabulary, one row per item."""

    leaf: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    log_price_dev: np.ndarray  # log price minus the log median of its subcategory
    log_quality: np.ndarray
    attribute: np.ndarray
    variant: np.ndarray
    variant2: np.ndarray
    adjective: np.ndarray
    material: np.ndarray
    use: np.ndarray
    feature: np.ndarray
    is_new: np.ndarray

    def __len__(self) -> int:
        return len(self.leaf)


def _brand_names(n: int, rng: np.random.Generator) -> list[str]:
    """Made-up, pronounceable, unique brand names of two or three syllables.

    Words that CSV readers take for missing values ("Nan", "None"; ``brands.reserved``) are
    never used.
    """
    words = demo_vocabulary().brands
    names: list[str] = []
    seen: set[str] = set(words.reserved)
    while len(names) < n:
        k = rng.integers(2, 4, size=4 * n)
        picks = rng.integers(0, len(words.syllables), size=(4 * n, 3))
        for length, row in zip(k, picks, strict=True):
            name = "".join(words.syllables[s] for s in row[:length]).capitalize()
            if name not in seen and len(names) < n:
                seen.add(name)
                names.append(name)
    return names


def _make_brands(items_per_dept: np.ndarray, rng: np.random.Generator) -> _Brands:
    """A few brands per department, more for big departments; brand shares are Zipf-like."""
    counts = np.clip(np.round(np.sqrt(items_per_dept)), 3, 60).astype(np.int64)
    names = np.array(_brand_names(int(counts.sum()), rng), dtype=object)
    dept = np.repeat(np.arange(len(counts)), counts)
    ids = np.arange(len(names))
    pools = _Pool.from_lists([ids[dept == d].tolist() for d in range(len(counts))])
    return _Brands(
        names=names,
        log_premium=rng.normal(0.0, 0.3, len(names)),
        log_quality=rng.normal(0.0, 0.4, len(names)),
        pools=pools,
    )


def _allocate_leaves(n_items: int, tax: _Taxonomy, rng: np.random.Generator) -> np.ndarray:
    """Product type of every item: big types get more items, small shops use fewer types."""
    n_leaves = len(tax.leaf_noun)
    weight = rng.lognormal(0.0, 0.6, n_leaves)
    n_used = min(n_leaves, max(4, n_items // 6))
    used = rng.choice(n_leaves, size=n_used, replace=False, p=weight / weight.sum())
    share = weight[used] / weight[used].sum()
    counts = 1 + rng.multinomial(n_items - n_used, share)
    return rng.permutation(np.repeat(used, counts))


def _draw_zipf(
    pools: _Pool, rows: np.ndarray, exponent: float, rng: np.random.Generator
) -> np.ndarray:
    """Like ``_Pool.draw`` but the first words of a row are drawn more often (rank^-exponent)."""
    count = np.diff(pools.ptr)[rows].astype(float)
    # inverse CDF of a continuous power law on [1, count + 1), floored to a rank
    u = rng.random(len(rows))
    a = 1.0 - exponent
    x = (((count + 1.0) ** a - 1.0) * u + 1.0) ** (1.0 / a)
    rank = np.minimum(np.floor(x).astype(np.int64) - 1, count.astype(np.int64) - 1)
    return pools.words[pools.ptr[rows] + rank].astype(np.int64)


def _shop_price(raw: np.ndarray) -> np.ndarray:
    """Round to the x.99 prices shops show (x.49 below 5)."""
    cheap = raw < 5
    return np.where(cheap, np.floor(raw * 2) / 2 + 0.49, np.floor(raw) + 0.99).round(2)


def _make_items(
    cfg: DemoShopConfig, tax: _Taxonomy, rng: np.random.Generator
) -> tuple[_Items, _Brands]:
    """Every item's product type, brand, price, popularity and words; some marked as new."""
    n = cfg.n_items
    leaf = _allocate_leaves(n, tax, rng)
    dept = tax.leaf_dept[leaf]
    sub = tax.leaf_sub[leaf]
    brands = _make_brands(np.bincount(dept, minlength=len(tax.departments)), rng)
    brand = _draw_zipf(brands.pools, dept, 0.9, rng)
    dev = brands.log_premium[brand] + rng.normal(0.0, 0.45, n)
    is_new = np.zeros(n, dtype=bool)
    is_new[rng.choice(n, size=round(cfg.new_item_share * n), replace=False)] = True
    items = _Items(
        leaf=leaf,
        brand=brand,
        price=_shop_price(np.exp(tax.sub_log_price[sub] + dev)),
        log_price_dev=dev,
        log_quality=rng.normal(0.0, 1.0, n) + brands.log_quality[brand],
        attribute=tax.attributes.draw(sub, rng),
        variant=tax.words["variants"].draw(sub, rng),
        variant2=tax.words["variants"].draw(sub, rng),
        adjective=tax.words["adjectives"].draw(sub, rng),
        material=tax.words["materials"].draw(sub, rng),
        use=tax.words["uses"].draw(sub, rng),
        feature=tax.words["features"].draw(sub, rng),
        is_new=is_new,
    )
    return items, brands


@dataclass(frozen=True)
class _Index:
    """The items that can be browsed (listed before the log ends), sorted by (product type, price).

    Simulation works on positions in this order: neighbours in it are similar items, and a
    product type is a contiguous range, so both "a similar item" and "an item of this type drawn
    by popularity" are vectorised array look-ups.
    """

    item: np.ndarray  # item row of each position
    leaf: np.ndarray
    brand: np.ndarray
    dept: np.ndarray
    log_quality: np.ndarray
    log_price_dev: np.ndarray
    leaf_start: np.ndarray  # per leaf
    leaf_count: np.ndarray
    leaf_cum: np.ndarray  # leaf + cumulative popularity share inside the leaf, per position
    demand_cum: np.ndarray  # cumulative demand share over leaves
    graph: _Pool  # rows: leaves; words: leaves one step away (complements weighted higher)

    def sample_in_leaf(self, leaves: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` positions per given leaf, drawn by item popularity."""
        u = rng.random((len(leaves), k))
        pos = np.searchsorted(self.leaf_cum, leaves[:, None] + u, side="right")
        lo = self.leaf_start[leaves][:, None]
        return np.clip(pos, lo, lo + self.leaf_count[leaves][:, None] - 1)

    def sample_leaves(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.searchsorted(self.demand_cum, rng.random(n), side="right")


def _leaf_graph(tax: _Taxonomy, has_items: np.ndarray) -> _Pool:
    """Where a session goes from a product type: its complements (three times as likely), its
    siblings in the subcategory, or, lacking both, the other types of its department."""
    rows: list[list[int]] = []
    for leaf in range(len(tax.leaf_noun)):
        links = [t for t in tax.links[leaf] if has_items[t]] * 3
        same_sub = np.flatnonzero(has_items & (tax.leaf_sub == tax.leaf_sub[leaf]))
        links += [int(t) for t in same_sub if t != leaf]
        if not links:
            same_dept = np.flatnonzero(has_items & (tax.leaf_dept == tax.leaf_dept[leaf]))
            links = [int(t) for t in same_dept if t != leaf] or [leaf]
        rows.append(links)
    return _Pool.from_lists(rows)


def _make_index(items: _Items, tax: _Taxonomy, rng: np.random.Generator) -> _Index:
    old = np.flatnonzero(~items.is_new)
    order = old[np.lexsort((items.price[old], items.leaf[old]))]
    leaf = items.leaf[order]
    n_leaves = len(tax.leaf_noun)
    count = np.bincount(leaf, minlength=n_leaves)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    quality = np.exp(items.log_quality[order])
    cum_q = np.cumsum(quality)
    before = np.concatenate([[0.0], cum_q])[start]  # popularity mass of earlier leaves
    total = np.bincount(leaf, weights=quality, minlength=n_leaves)
    leaf_cum = leaf + (cum_q - before[leaf]) / total[leaf]
    leaf_cum[start[count > 0] + count[count > 0] - 1] = leaf[start[count > 0]] + 1.0
    demand = np.where(count > 0, rng.lognormal(0.0, 0.7, n_leaves) * np.sqrt(count), 0.0)
    demand_cum = np.cumsum(demand / demand.sum())
    demand_cum[-1] = 1.0
    return _Index(
        item=order,
        leaf=leaf,
        brand=items.brand[order],
        dept=tax.leaf_dept[leaf],
        log_quality=items.log_quality[order],
        log_price_dev=items.log_price_dev[order],
        leaf_start=start,
        leaf_count=count,
        leaf_cum=leaf_cum,
        demand_cum=demand_cum,
        graph=_leaf_graph(tax, count > 0),
    )


@dataclass(frozen=True)
class _Catalog:
    """Everything generated about the items, handed around as one piece."""

    tax: _Taxonomy
    items: _Items
    brands: _Brands
    index: _Index


# --------------------------------------------------------------------------------------------------
# Users and sessions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Users:
    taste: np.ndarray  # (n_users, 4) preferred leaves; the first n_tastes of a row are used
    n_tastes: np.ndarray
    price_level: np.ndarray  # preferred log price deviation
    favourite_brand: np.ndarray  # (n_users, n_departments) brand id
    n_sessions: np.ndarray


def _make_users(
    cfg: DemoShopConfig, index: _Index, brands: _Brands, rng: np.random.Generator
) -> _Users:
    """Latent tastes: related product types, a brand per department, a price level, activity."""
    n = cfg.n_users
    taste = np.empty((n, 4), dtype=np.int64)
    taste[:, 0] = index.sample_leaves(n, rng)
    for j in range(1, 4):
        related = index.graph.words[index.graph.draw(taste[:, 0], rng)]
        taste[:, j] = np.where(rng.random(n) < 0.6, related, index.sample_leaves(n, rng))
    n_depts = len(brands.pools.ptr) - 1
    favourite = np.stack(
        [_draw_zipf(brands.pools, np.full(n, d), 0.9, rng) for d in range(n_depts)], axis=1
    )
    extra = cfg.mean_sessions_per_user - 1.0
    rate = rng.gamma(1.5, extra / 1.5, n) if extra > 0 else np.zeros(n)
    return _Users(
        taste=taste,
        n_tastes=1 + rng.binomial(3, 0.4, n),
        price_level=rng.normal(0.0, 0.35, n),
        favourite_brand=favourite,
        n_sessions=1 + rng.poisson(rate),
    )


def _gumbel_pick(cands: np.ndarray, score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample one candidate per row with probability proportional to exp(score)."""
    noisy = score - np.log(-np.log(rng.random(score.shape)))
    return cands[np.arange(len(cands)), np.argmax(noisy, axis=1)]


def _fit(index: _Index, users: _Users, user: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """How well candidate items (rows of ``cands``) suit each user: brand loyalty and price."""
    u = user[:, None]
    favourite = users.favourite_brand[u, index.dept[cands]] == index.brand[cands]
    price_gap = index.log_price_dev[cands] - users.price_level[u]
    return FAVOURITE_BRAND_BONUS * favourite - 0.5 * (price_gap / PRICE_TOLERANCE) ** 2


def _choose_in_leaves(
    index: _Index,
    users: _Users,
    user: np.ndarray,
    leaves: np.ndarray,
    avoid: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """A user's pick among popular items of the given product types (one per row)."""
    cands = index.sample_in_leaf(leaves, CANDIDATES, rng)
    score = _fit(index, users, user, cands)
    if avoid is not None:
        score = score - 1e3 * (cands == avoid[:, None])
    return _gumbel_pick(cands, score, rng)


def _taste_leaves(users: _Users, user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    slot = (rng.random(len(user)) * users.n_tastes[user]).astype(np.int64)
    return users.taste[user, slot]


def _near(
    index: _Index, users: _Users, user: np.ndarray, cur: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A similar item: a few price ranks away in the same product type, often the same brand."""
    leaf = index.leaf[cur]
    lo = index.leaf_start[leaf][:, None]
    hi = lo + index.leaf_count[leaf][:, None] - 1
    cands = np.clip(cur[:, None] + NEAR_OFFSETS, lo, hi)
    score = (
        index.log_quality[cands]
        - NEAR_DISTANCE_COST * np.abs(NEAR_OFFSETS)
        + SAME_BRAND_BONUS * (index.brand[cands] == index.brand[cur][:, None])
        + _fit(index, users, user, cands)
        - 1e3 * (cands == cur[:, None])
    )
    return _gumbel_pick(cands, score, rng)


def _next_views(
    index: _Index,
    users: _Users,
    user: np.ndarray,
    cur: np.ndarray,
    prev: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One browsing step for every active session, each with a randomly drawn kind of move."""
    move = np.searchsorted(np.cumsum(list(MOVES.values())), rng.random(len(cur)), side="right")
    move = np.minimum(move, len(MOVES) - 1)
    nxt = np.empty_like(cur)
    for m, name in enumerate(MOVES):
        rows = np.flatnonzero(move == m)
        if not len(rows):
            continue
        u, c = user[rows], cur[rows]
        if name == "near":
            nxt[rows] = _near(index, users, u, c, rng)
        elif name == "back":
            nxt[rows] = np.where(prev[rows] != c, prev[rows], _near(index, users, u, c, rng))
        else:
            if name == "leaf":
                leaves = index.leaf[c]
            elif name == "complement":
                leaves = index.graph.words[index.graph.draw(index.leaf[c], rng)]
            else:
                leaves = _taste_leaves(users, u, rng)
            nxt[rows] = _choose_in_leaves(index, users, u, leaves, c, rng)
    return nxt


@dataclass(frozen=True)
class _Views:
    """Every view of the simulation: its session, browsing step, position and offset (seconds
    from the session start)."""

    session: np.ndarray
    step: np.ndarray
    pos: np.ndarray
    offset: np.ndarray


def _simulate_views(
    session_user: np.ndarray,
    index: _Index,
    users: _Users,
    rng: np.random.Generator,
    report: Callable[[float], None],
) -> _Views:
    """Browse all sessions in lock step: one vectorised move per step for the sessions still on."""
    n = len(session_user)
    start_leaves = np.where(
        rng.random(n) < START_FROM_TASTE_P,
        _taste_leaves(users, session_user, rng),
        index.sample_leaves(n, rng),
    )
    cur = _choose_in_leaves(index, users, session_user, start_leaves, None, rng)
    prev = cur.copy()
    elapsed = np.zeros(n)
    active = np.arange(n)
    chunks = [(active, np.zeros(n, dtype=np.int64), cur.copy(), elapsed.copy())]
    for step in range(1, MAX_STEPS):
        active = active[rng.random(len(active)) < CONTINUE_P]
        if not len(active):
            break
        nxt = _next_views(index, users, session_user[active], cur[active], prev[active], rng)
        prev[active] = cur[active]
        cur[active] = nxt
        elapsed[active] += 15.0 + np.minimum(rng.exponential(75.0, len(active)), 900.0)
        chunks.append((active, np.full(len(active), step), nxt, elapsed[active]))
        if step % 6 == 0:
            report(step / MAX_STEPS)
    return _Views(*(np.concatenate(parts) for parts in zip(*chunks, strict=True)))


def _landing_views(
    views: _Views, n_positions: int, n_sessions: int, n_users: int, rng: np.random.Generator
) -> tuple[_Views, np.ndarray]:
    """One-view sessions (a newsletter or ad click) for listed items nobody browsed, so that the
    only items without any event are the new ones and cold start stays a clean slice."""
    seen = np.bincount(views.pos, minlength=n_positions) > 0
    missing = np.flatnonzero(~seen)
    sessions = n_sessions + np.arange(len(missing))
    extra = _Views(sessions, np.zeros_like(missing), missing, np.zeros(len(missing)))
    merged = _Views(
        *(np.concatenate([getattr(views, f.name), getattr(extra, f.name)]) for f in fields(_Views))
    )
    return merged, rng.integers(0, n_users, len(missing))


@dataclass(frozen=True)
class _Events:
    """All events before timing: session, position, kind (0 view, 1 cart, 2 purchase), offset."""

    session: np.ndarray
    pos: np.ndarray
    kind: np.ndarray
    offset: np.ndarray
    duration: np.ndarray  # per session, seconds from its first to its last event


def _add_carts(
    views: _Views,
    session_user: np.ndarray,
    index: _Index,
    users: _Users,
    rng: np.random.Generator,
) -> _Events:
    """Carts right after some views (more for the favourite brand) and a checkout at the end of
    the session that buys some of the carted items."""
    user = session_user[views.session]
    favourite = users.favourite_brand[user, index.dept[views.pos]] == index.brand[views.pos]
    carted = rng.random(len(views.pos)) < CART_P * (1.0 + favourite)
    cart_rows = np.flatnonzero(carted)
    buy_rows = cart_rows[rng.random(len(cart_rows)) < PURCHASE_GIVEN_CART_P]
    n_sessions = len(session_user)
    last_view = np.zeros(n_sessions)
    np.maximum.at(last_view, views.session, views.offset)
    buy_rows = buy_rows[np.lexsort((views.offset[buy_rows], views.session[buy_rows]))]
    buy_session = views.session[buy_rows]
    checkout = last_view[buy_session] + 40.0 + 10.0 * rank_within_runs(buy_session)
    n_bought = np.bincount(buy_session, minlength=n_sessions)
    cart_offset = views.offset[cart_rows] + 3.0 + 10.0 * rng.random(len(cart_rows))
    return _Events(
        session=np.concatenate([views.session, views.session[cart_rows], buy_session]),
        pos=np.concatenate([views.pos, views.pos[cart_rows], views.pos[buy_rows]]),
        kind=np.repeat(
            np.array([0, 1, 2], dtype=np.int8), [len(views.pos), len(cart_rows), len(buy_rows)]
        ),
        offset=np.concatenate([views.offset, cart_offset, checkout]),
        duration=last_view + 14.0 + np.where(n_bought > 0, 40.0 + 10.0 * n_bought, 0.0),
    )


@dataclass(frozen=True)
class _Sessions:
    user: np.ndarray  # user code of every session
    is_search: np.ndarray  # the session began with a search
    start_s: np.ndarray  # start, seconds after config.start
    rank: np.ndarray  # chronological order within each user, users in id order


def _schedule(
    session_user: np.ndarray, duration: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Start second of every session over the log span, and its chronological rank.

    Starts are uniform per user, then pushed later where a session would overlap the previous
    one of the same user: ``s'_k = max(s_k, s'_{k-1} + d_{k-1})`` is a running maximum of
    ``s_k - C_k`` plus ``C_k`` (``C`` the user's cumulative durations), so no loop is needed.
    """
    n = len(session_user)
    span = LOG_DAYS * _SECONDS - 6 * 3600
    raw = (rng.random(n) * span).astype(np.int64)
    order = np.lexsort((raw, session_user))
    user = session_user[order].astype(np.int64)
    gap = np.ceil(duration[order]).astype(np.int64) + _MIN_SESSION_GAP_S
    cum = np.cumsum(gap) - gap
    first = np.r_[True, user[1:] != user[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    before = cum - cum[group_start]  # durations of the user's earlier sessions
    # integer offsets keep users apart in one running maximum over the whole array
    big = np.int64(1000 * span)
    lifted = raw[order] - before + user * big
    start = np.empty(n, dtype=np.int64)
    start[order] = np.maximum.accumulate(lifted) - user * big + before
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return start, rank


# --------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------


def _join(*parts: pd.Series | str) -> pd.Series:
    """Concatenate string Series and literals element-wise (vectorised in pandas)."""
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    assert isinstance(out, pd.Series)
    return out


def _texts(
    catalog: _Catalog, html_share: float, rng: np.random.Generator
) -> tuple[pd.Series, pd.Series]:
    """Titles "<Brand> <adjective> <noun> <attribute>, <variant>" and 1–3 sentence descriptions.

    A share of rows carries HTML (``&amp;``, ``<br>``, ``<p>``) as merchant feeds do, so that the
    cleaning stage has real work in the demo.
    """

    def col(words: np.ndarray, codes: np.ndarray, lower: bool = False) -> pd.Series:
        if lower:
            words = np.array([_soft_lower(w) for w in words], dtype=object)
        return pd.Series(words, dtype=object).take(codes).reset_index(drop=True)

    items, brands, tax = catalog.items, catalog.brands, catalog.tax
    pools = tax.words
    brand = col(brands.names, items.brand)
    adjective = col(pools["adjectives"].words, items.adjective)
    variant = col(pools["variants"].words, items.variant)
    attribute = col(tax.attributes.words, items.attribute)
    title = _join(
        brand, " ", adjective, " ", col(tax.leaf_noun, items.leaf), " ", attribute, ", ", variant
    )

    low_adj = col(pools["adjectives"].words, items.adjective, lower=True)
    low_noun = col(tax.leaf_noun, items.leaf, lower=True)
    material = col(pools["materials"].words, items.material)
    use = col(pools["uses"].words, items.use)
    plural = tax.leaf_plural[items.leaf]
    article = np.where(low_adj.str[0].isin(list("aeiou")).to_numpy(), "An ", "A ")
    first_a = _join(
        pd.Series(np.where(plural, "These ", "This ")),
        low_adj,
        " ",
        low_noun,
        pd.Series(np.where(plural, " are", " is")),
        " made with ",
        material,
        " and built for ",
        use,
        ".",
    )
    opener = pd.Series(np.where(plural, adjective.to_numpy(), (article + low_adj).to_numpy()))
    first_b = _join(
        opener, " ", low_noun, " from ", brand, ", made with ", material, " for ", use, "."
    )
    first = first_a.where(rng.random(len(items)) < 0.5, first_b)
    second = _join(" It comes with ", col(pools["features"].words, items.feature), ".")
    third = _join(" Available in ", col(pools["variants"].words, items.variant, lower=True), ".")
    n_sent = 1 + rng.binomial(2, 0.6, len(items))
    description = _join(first, second.where(n_sent >= 2, ""), third.where(n_sent >= 3, ""))

    html = rng.random(len(items)) < html_share
    two_tone = _join(title, " &amp; ", col(pools["variants"].words, items.variant2))
    title = title.where(~html, two_tone)
    marked = _join("<p>", description.str.replace(". ", ".<br>", n=1, regex=False), "</p>")
    description = description.where(~html, marked)
    return title.astype(str), description.astype(str)


def _query_texts(
    catalog: _Catalog, pos: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A query typed by a user who then clicked the item at ``pos``, and the query's brand.

    Most queries are just the product noun (head queries shared by many items and users), some
    add a brand, adjective, attribute or colour (torso and tail), a few are misspelled or in
    another word order. Queries are encoded as integer tuples first and only distinct ones are
    turned into strings, so the string work scales with the vocabulary, not with the log.
    """
    n = len(pos)
    if n == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    items, item = catalog.items, catalog.index.item[pos]
    wording = demo_vocabulary().queries
    probs = np.array([k.share for k in wording.kinds.values()])
    kind = np.minimum(
        np.searchsorted(np.cumsum(probs / probs.sum()), rng.random(n), "right"),
        len(wording.kinds) - 1,
    )
    uses = [set(k.words) for k in wording.kinds.values()]

    def field(name: str, values: np.ndarray) -> np.ndarray:
        wanted = np.array([name in u for u in uses])[kind]
        return np.where(wanted, values, -1)

    parts = np.stack(
        [
            items.leaf[item],
            field("brand", items.brand[item]),
            field("adjective", items.adjective[item]),
            field("attribute", items.attribute[item]),
            field("variant", items.variant[item]),
            np.where(rng.random(n) < wording.typo_share, rng.integers(1, 3, n), 0),
            (rng.random(n) < wording.swap_share).astype(np.int64),
        ],
        axis=1,
    )
    code = np.zeros(n, dtype=np.int64)  # mixed-radix packing of a row, to find distinct rows fast
    for column, radix in zip(parts.T + 1, parts.max(axis=0) + 2, strict=True):
        code = code * radix + column
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    texts = np.array([_query_string(parts[i], catalog) for i in first], dtype=object)
    return texts[inverse], parts[:, 1]


def _query_string(row: np.ndarray, catalog: _Catalog) -> str:
    """The words of one encoded query (see ``_query_texts``), lower case as people type."""
    tax, brands = catalog.tax, catalog.brands
    leaf, brand, adjective, attribute, variant, typo, swap = (int(v) for v in row)
    noun = tax.leaf_noun[leaf].lower() if typo == 0 else tax.noun_typos[leaf, typo - 1]
    words = [noun]
    if adjective >= 0:
        words.insert(0, tax.words["adjectives"].words[adjective].lower())
    if brand >= 0:
        words.insert(0, brands.names[brand].lower())
    if attribute >= 0:
        words.append(tax.attributes.words[attribute].lower().removeprefix("with "))
    if variant >= 0:
        words.append(tax.words["variants"].words[variant].lower())
    if swap and len(words) > 1:
        words = [*words[1:], words[0]]
    return " ".join(words)


# --------------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------------


def _ids(prefix: str, n: int) -> pd.Series:
    """Ids like I000001, zero padded to the width the largest one needs, so they sort as text."""
    width = max(6, len(str(n)))
    digits = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    return pd.Series(np.char.add(prefix, digits).astype(object)).astype(str)


def _take(labels: pd.Series, codes: np.ndarray) -> pd.Series:
    """Label of every code, without creating one Python string per row."""
    return labels.take(codes).reset_index(drop=True)


_EVENT_NAMES = pd.Series(["view", "cart", "purchase", "click"]).astype(str)


#: Share of the overall progress bar each stage spans.
_STAGES = {
    "catalog": (0.0, 0.05),
    "users": (0.05, 0.1),
    "sessions": (0.1, 0.7),
    "queries": (0.7, 0.8),
    "tables": (0.8, 1.0),
}


@dataclass
class _Progress:
    """Maps each stage's own 0..1 onto the overall bar the caller sees."""

    callback: ProgressFn | None

    def __call__(self, stage: str, fraction: float = 0.0) -> None:
        if self.callback is not None:
            lo, hi = _STAGES[stage]
            self.callback(stage, lo + (hi - lo) * min(max(fraction, 0.0), 1.0))


@dataclass(frozen=True)
class _LogRows:
    """Rows of a log table as codes; strings and timestamps are made once, at the end."""

    session: np.ndarray
    pos: np.ndarray
    kind: np.ndarray  # index into _EVENT_NAMES
    seconds: np.ndarray  # after config.start
    query: np.ndarray | None = None


def generate_demo_shop(
    config: DemoShopConfig | None = None, progress: ProgressFn | None = None
) -> DemoShop:
    """Generate the demo shop described by ``config`` (defaults: 5,000 items, 3,000 users).

    ``progress(stage, fraction_done)`` is called a handful of times for a progress bar. Each stage
    has its own random stream derived from the seed, so the output is identical for the same
    config on any machine and changing one stage does not reshuffle the others.
    """
    cfg = config or DemoShopConfig()
    report = _Progress(progress)

    def rng(stage: int) -> np.random.Generator:
        return np.random.default_rng([cfg.seed, stage])

    report("catalog")
    tax = _taxonomy()
    items, brands = _make_items(cfg, tax, rng(1))
    catalog = _Catalog(tax, items, brands, _make_index(items, tax, rng(2)))
    index = catalog.index
    report("users")
    users = _make_users(cfg, index, brands, rng(3))
    report("sessions")
    planned_user = np.repeat(np.arange(cfg.n_users), users.n_sessions)
    is_search = rng(4).random(len(planned_user)) < cfg.query_share
    views = _simulate_views(planned_user, index, users, rng(5), lambda f: report("sessions", f))
    views, landing_user = _landing_views(
        views, len(index.item), len(planned_user), cfg.n_users, rng(6)
    )
    session_user = np.concatenate([planned_user, landing_user])
    events = _add_carts(views, session_user, index, users, rng(7))
    start_s, rank = _schedule(session_user, events.duration, rng(8))
    is_search = np.concatenate([is_search, np.zeros(len(landing_user), dtype=bool)])
    sessions = _Sessions(session_user, is_search, start_s, rank)
    report("queries")
    query_rows = _query_rows(views, events, sessions, catalog, rng(9))
    report("tables")
    event_rows = _event_rows(cfg, events, sessions, rng(10))
    items_df, id_of_pos = _items_frame(cfg, catalog, int(event_rows.seconds.max()), rng(11))
    user_ids = _ids("U", cfg.n_users)
    report("tables", 0.5)
    interactions = _log_frame(cfg, event_rows, sessions, user_ids, id_of_pos)
    queries = _log_frame(cfg, query_rows, sessions, user_ids, id_of_pos)
    report("tables", 1.0)
    return DemoShop(
        items=items_df,
        interactions=interactions[INTERACTIONS.column_names],
        queries=queries[QUERIES.column_names],
    )


def _event_rows(
    cfg: DemoShopConfig, events: _Events, sessions: _Sessions, rng: np.random.Generator
) -> _LogRows:
    """Events in (user, time) order, with a share fired twice as real trackers do."""
    offset = np.floor(events.offset).astype(np.int64)
    n = len(offset)
    dup = np.flatnonzero(rng.random(n) < cfg.duplicate_event_share)
    rows = np.concatenate([np.arange(n), dup])
    # sessions of a user never overlap and rank is chronological, so this key orders by
    # (user, timestamp); a stable sort keeps each double-fired copy next to its original
    key = sessions.rank[events.session[rows]] * (1 << 24) + offset[rows]
    rows = rows[np.argsort(key, kind="stable")]
    session = events.session[rows]
    return _LogRows(
        session, events.pos[rows], events.kind[rows], sessions.start_s[session] + offset[rows]
    )


def _query_rows(
    views: _Views,
    events: _Events,
    sessions: _Sessions,
    catalog: _Catalog,
    rng: np.random.Generator,
) -> _LogRows:
    """Query log of the sessions that began with a search, in time order.

    The first view is the click that led into the session; later views of the same product type
    (and brand, if the query named one) within the next steps are further clicks on the result
    list; purchases of clicked items in the session are logged against the query too.
    """
    index, n_sessions = catalog.index, len(sessions.user)
    first = np.flatnonzero((views.step == 0) & sessions.is_search[views.session])
    searched = views.session[first]
    text, query_brand = _query_texts(catalog, views.pos[first], rng)
    text_of = np.empty(n_sessions, dtype=object)
    brand_of, leaf_of = np.full(n_sessions, -1), np.full(n_sessions, -1)
    text_of[searched], brand_of[searched] = text, query_brand
    leaf_of[searched] = index.leaf[views.pos[first]]

    s = views.session
    later = np.flatnonzero(
        sessions.is_search[s]
        & (views.step >= 1)
        & (views.step <= 3)
        & (index.leaf[views.pos] == leaf_of[s])
        & ((brand_of[s] < 0) | (index.brand[views.pos] == brand_of[s]))
    )
    clicks = np.concatenate([first, later[rng.random(len(later)) < EXTRA_CLICK_P]])
    n_pos = len(index.item)
    clicked = views.session[clicks].astype(np.int64) * n_pos + views.pos[clicks]
    bought = np.flatnonzero(events.kind == 2)
    bought = bought[
        np.isin(events.session[bought].astype(np.int64) * n_pos + events.pos[bought], clicked)
    ]
    session = np.concatenate([views.session[clicks], events.session[bought]])
    offset = np.concatenate([views.offset[clicks], events.offset[bought]])
    seconds = sessions.start_s[session] + np.floor(offset).astype(np.int64)
    kind = np.repeat(np.array([3, 2], dtype=np.int8), [len(clicks), len(bought)])
    order = np.lexsort((kind, seconds))
    pos = np.concatenate([views.pos[clicks], events.pos[bought]])
    return _LogRows(
        session[order], pos[order], kind[order], seconds[order], query=text_of[session[order]]
    )


def _log_frame(
    cfg: DemoShopConfig,
    rows: _LogRows,
    sessions: _Sessions,
    user_ids: pd.Series,
    id_of_pos: pd.Series,
) -> pd.DataFrame:
    """Turn code rows into the string and timestamp columns of the schema."""
    origin = np.datetime64(pd.Timestamp(cfg.start).floor("s").to_datetime64(), "s")
    columns = {
        "user_id": _take(user_ids, sessions.user[rows.session]),
        "item_id": _take(id_of_pos, rows.pos),
        "event": _take(_EVENT_NAMES, rows.kind),
        "timestamp": origin + rows.seconds.astype("timedelta64[s]"),
    }
    if rows.query is not None:
        columns["query"] = pd.Series(rows.query, dtype=object).astype(str)
    return pd.DataFrame(columns)


def _items_frame(
    cfg: DemoShopConfig, catalog: _Catalog, last_second: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.Series]:
    """The catalog with ids in listing order, and the id of every browsing position.

    Old items were listed up to two years before the log, new ones in the two weeks after its
    last event, so they have no history at all and are the newest ids, as in a real catalog.
    """
    items, tax, brands = catalog.items, catalog.tax, catalog.brands
    n = len(items)
    start_day = np.datetime64(pd.Timestamp(cfg.start).normalize().to_datetime64(), "D")
    last_day = np.datetime64(pd.Timestamp(cfg.start) + pd.Timedelta(seconds=last_second), "D")
    days = np.where(
        items.is_new,
        (last_day - start_day).astype(np.int64) + rng.integers(1, 15, n),
        -rng.integers(1, 731, n),
    )
    listed = (start_day + days.astype("timedelta64[D]")).astype("datetime64[s]")
    order = np.lexsort((rng.random(n), listed))  # row of the item listed k-th
    title, description = _texts(catalog, cfg.html_share, rng)
    frame = pd.DataFrame(
        {
            "item_id": _ids("I", n),
            "title": title.take(order).reset_index(drop=True),
            "description": description.take(order).reset_index(drop=True),
            "brand": pd.Series(brands.names[items.brand[order]], dtype=object).astype(str),
            "categories": pd.Series(tax.leaf_path[items.leaf[order]], dtype=object).astype(str),
            "price": items.price[order],
            "listed_at": listed[order],
        }
    )
    id_of_row = frame["item_id"].take(np.argsort(order)).reset_index(drop=True)
    return frame, _take(id_of_row, catalog.index.item)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------

_EXTENSIONS = {"csv": "csv", "parquet": "parquet", "jsonl": "jsonl"}


def write_demo_shop(
    shop: DemoShop, directory: str | Path, fmt: Literal["csv", "parquet", "jsonl"] = "csv"
) -> dict[str, Path]:
    """Write ``items``, ``interactions`` and ``queries`` as ``<name>.<fmt>`` into ``directory``.

    These are the files a user would bring from a real shop, so ``shopaug ingest`` reads the demo
    through exactly the same loaders.
    """
    if fmt not in _EXTENSIONS:
        raise ValueError(f"unknown format {fmt!r}; use one of {sorted(_EXTENSIONS)}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in (
        ("items", shop.items),
        ("interactions", shop.interactions),
        ("queries", shop.queries),
    ):
        path = out / f"{name}.{_EXTENSIONS[fmt]}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_json(
                path,
                orient="records",
                lines=True,
                date_format="iso",
                date_unit="s",
                force_ascii=False,
            )
        paths[name] = path
    return paths
