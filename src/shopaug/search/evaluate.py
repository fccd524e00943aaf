"""``shopaug bench search``: BM25, dense and hybrid search, per training regime, on query logs.

Protocol. The query log is split by time: the last ``test_share`` of it is the test period, the
``valid_share`` before that a validation period, the rest the training period. A test case is a
distinct query typed in the test period; its relevant items are every item clicked or bought
after it in that period. Fine-tuning sees training-period queries only (real regime) or none at
all (synthetic, made from item text); the fusion method of each hybrid is chosen on validation
queries. Test queries reach nothing but the final scoring.

Shops without a query log (``holdout_items``): a known-item protocol. A share of the items is
held out (half as many again for validation), chosen by a hash of the item id; every synthetic
query written for a held-out item is a test case whose one relevant item is that item, and no
training pair names a held-out item, so the fine-tuned encoder meets test items as it would meet
new ones. Test cases keep the queries the round-trip filter dropped (BM25 missed their item):
they are sliced apart, since keeping only the filter's survivors would favour BM25 by
construction.

Regimes: ``zero-shot`` (the pretrained encoder, no queries), ``synthetic`` (fine-tuned on
synthetic queries from item text) and ``real+synthetic`` (fine-tuned on training-period queries
plus the synthetic ones). Every system is scored per query with nDCG@10, Recall@10/100 and MRR
(the textbook definitions of :func:`shopaug.evaluate.metrics.list_metrics_per_user`), sliced by
query traffic (head / torso / tail: the most searched queries making up the first, second and
last third of the searches), timed per query, and compared with BM25 (and each fine-tuned system
with zero-shot) by a paired bootstrap over test queries.

Traffic is how often a query is searched: its rows in the query log, or the ``frequency`` column
of a query file. A query file without one is relevance judgments only: its rows per query are
relevant items, not searches, so slicing by them would call a query with many relevant items
"head". Such a file is sliced by the shop's query log when there is one (a test query the log
lacks is tail) and otherwise not at all: the results have the ``all`` slice only, and
``data.slices`` says why (:func:`traffic_slices`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopaug.data.errors import DataError
from shopaug.encode import TextEncoder
from shopaug.evaluate.metrics import list_metrics_per_user
from shopaug.evaluate.stats import bootstrap_mean_ci, paired_bootstrap
from shopaug.progress import StageCallback, notifier
from shopaug.search.base import SearchConfig
from shopaug.search.engine import Mode, SearchEngine, item_text_encoder
from shopaug.search.expansion import DocumentExpansion, normalised
from shopaug.search.finetune import (
    CheckpointScore,
    FineTuneConfig,
    fine_tune,
    training_record,
    training_triples,
    without_generic_queries,
)
from shopaug.search.synthetic import TemplateQueries, llm_queries

logger = logging.getLogger(__name__)

Regime = Literal["zero-shot", "synthetic", "real+synthetic"]
REGIMES: tuple[Regime, ...] = ("zero-shot", "synthetic", "real+synthetic")


def default_regimes(holdout_items: float | None, queries: Path | None = None) -> list[Regime]:
    """Every regime that can run. ``real+synthetic`` trains on the log's training period, which
    neither the holdout protocol (no log) nor a query file (all of it test cases, the log left
    unsplit) provides, so those get the regimes that need no real queries."""
    needs_no_log = holdout_items is not None or queries is not None
    return [r for r in REGIMES if not (needs_no_log and r == "real+synthetic")]


KS = (10, 100)
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr")
BUCKETS = ("head", "torso", "tail")
#: Column of a query file with how often each query is searched (its traffic).
FREQUENCY = "frequency"
#: Dense weights of score fusion tried on validation queries (RRF is tried as well).
FUSION_WEIGHTS = (0.3, 0.5, 0.7)


class SearchBenchConfig(BaseModel):
    """Everything that decides a search benchmark's numbers; saved with the results."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    queries: Path | None = Field(
        None,
        description="Query file to test on instead of the log: query, item_id (a relevant "
        "item per row) and, for head/torso/tail slices, frequency (searches of the query).",
    )
    regimes: list[Regime] = Field(default_factory=lambda: list(REGIMES), min_length=1)
    synthetic: Literal["template", "llm"] = "template"
    llm_limit: int | None = Field(None, ge=1, description="Items sent to the LLM (None: all).")
    synthetic_files: list[Path] = Field(
        default_factory=list,
        description="Synthetic pairs made ahead of time, used instead of ``synthetic``: the "
        "queries.parquet of `shopaug augment -s llm-queries` on this data, or query,item_id files.",
    )
    mix_template: bool = Field(
        False,
        description="With synthetic_files: train on template queries too, so the encoder "
        "meets both styles (the files' own, e.g. an LLM's, and cut-from-the-fields ones).",
    )
    expansion_files: list[Path] = Field(
        default_factory=list,
        description="Synthetic queries appended to their items' keyword documents (doc2query--; "
        "same shapes as synthetic_files, round-trip-removed rows skipped): BM25 and every hybrid "
        "are also scored on the expanded catalog and compared with their plain twins.",
    )
    expansion: DocumentExpansion = DocumentExpansion()
    holdout_items: float | None = Field(
        None,
        gt=0,
        lt=0.5,
        description="Known-item protocol (module docstring): share of items whose synthetic "
        "queries are the test cases; for shops without a query log.",
    )
    blank_fields: list[Literal["categories", "brand", "description"]] = Field(
        default_factory=list,
        description="Catalog fields emptied before anything runs: a shop with sparser metadata.",
    )
    test_share: float = Field(0.3, gt=0, lt=1)
    valid_share: float = Field(0.15, ge=0, lt=1)
    valid_items: float = Field(
        0.1,
        gt=0,
        lt=0.5,
        description="With a query file: share of items whose synthetic queries are the "
        "validation cases (never trained on) that choose fusion and the shipped system.",
    )
    valid_queries: Literal["all", "not-template"] = Field(
        "not-template",
        description="With a query file: which of the held-out items' queries validate. "
        "not-template leaves out the template's (when other sources are there): they are cut "
        "from the item's own fields, so they reward exact word overlap, and a validation made "
        "of them ships keyword-heavy fusions that real shoppers' wording does not favour.",
    )
    finetune: FineTuneConfig = FineTuneConfig()
    search: SearchConfig = SearchConfig()
    n_resamples: int = Field(1000, ge=100)
    events: list[str] | None = None
    work_dir: Path = Path("runs/bench")

    @model_validator(mode="after")
    def _query_file_trains_on_no_log(self) -> SearchBenchConfig:
        """A query file is all test cases: the log is not split, so no real training queries."""
        real = "real+synthetic" in self.regimes
        if real and self.queries is not None and self.holdout_items is None:
            raise ValueError(
                "queries makes every query a test case and leaves no real training queries; "
                "drop regime real+synthetic (or drop queries to split the query log)"
            )
        return self

    @model_validator(mode="after")
    def _holdout_needs_no_log(self) -> SearchBenchConfig:
        if self.holdout_items is None:
            return self
        if self.expansion_files:
            raise ValueError(
                "holdout_items tests on the held-out items' synthetic queries, which expansion "
                "would write into those items' documents; drop expansion_files (or test on a "
                "query log or a query file)"
            )
        if self.queries is not None:
            raise ValueError("holdout_items makes its own test queries; drop queries")
        if "real+synthetic" in self.regimes:
            raise ValueError("holdout_items trains on no real queries; drop regime real+synthetic")
        return self


# --- the query log ----------------------------------------------------------------------------


def split_log(
    log: pd.DataFrame, test_share: float, valid_share: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test rows of a query log, cut by time (by query text when the log
    has no timestamps, so that one query never sits on both sides)."""
    if "timestamp" in log and log["timestamp"].notna().all():
        position = log["timestamp"].rank(method="first").to_numpy()
        test_cut = len(log) - round(test_share * len(log))
        valid_cut = test_cut - round(valid_share * len(log))
    else:
        codes = pd.util.hash_pandas_object(log["query"].str.lower(), index=False).to_numpy()
        position = codes % 10_000
        test_cut = round((1.0 - test_share) * 10_000)
        valid_cut = test_cut - round(valid_share * 10_000)
    return (
        log[position <= valid_cut],
        log[(position > valid_cut) & (position <= test_cut)],
        log[position > test_cut],
    )


def read_query_file(path: Path) -> pd.DataFrame:
    """A user's query file (CSV, Parquet or JSONL) with ``query`` and ``item_id`` columns, and
    optionally ``frequency`` (checked by :func:`_check_frequency`)."""
    readers = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".jsonl": _read_jsonl}
    if path.suffix not in readers:
        raise DataError(f"{path}: query file must be .csv, .parquet or .jsonl")
    frame = readers[path.suffix](path)
    missing = [c for c in ("query", "item_id") if c not in frame]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; need query and item_id")
    empty = frame["query"].isna() | (frame["query"].astype(str).str.strip() == "")
    if empty.any():
        raise DataError(f"{path} row {int(np.flatnonzero(empty)[0])}: empty query")
    frame = frame.assign(query=frame["query"].astype(str), item_id=frame["item_id"].astype(str))
    if FREQUENCY in frame:
        _check_frequency(frame, path)
    return frame


def _check_frequency(frame: pd.DataFrame, path: Path) -> None:
    """``frequency`` is a query's searches: a number >= 0, the same on every row of the query
    (a file repeats it on each relevant item's row)."""
    values = pd.to_numeric(frame[FREQUENCY], errors="coerce")
    bad = values.isna() | ~np.isfinite(values) | (values < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path} row {row}: {FREQUENCY} {str(frame[FREQUENCY].iloc[row])!r} is not a count "
            "of searches (a number >= 0)"
        )
    spread = values.groupby(frame["query"]).nunique()
    if (spread > 1).any():
        query = spread.index[int(np.flatnonzero(spread.to_numpy() > 1)[0])]
        raise DataError(
            f"{path}: query {query!r} has different {FREQUENCY} values on its rows; give the "
            "searches of the query once per query (the same on each of its rows)"
        )


def _read_jsonl(path: Path) -> pd.DataFrame:
    return pd.read_json(path, lines=True, dtype={"item_id": str})


def read_pairs_file(path: Path, item_ids: np.ndarray) -> pd.DataFrame:
    """Synthetic ``query, item_id, source, kept`` pairs from a file made ahead of time.

    Two shapes: the ``queries.parquet`` of `shopaug augment -s llm-queries` (or the
    ``expansions.parquet`` of ``-s llm-expand``, whose phrases count as queries), whose ``item`` is a
    row of the catalog it was made from (``item_ids`` maps rows to ids, so it must be the same
    data) and ``kept`` the round-trip filter's verdict; or any query file with ``item_id``
    (:func:`read_query_file`), all of it kept.
    """
    if path.suffix == ".parquet" and path.is_file():
        columns = pq.read_schema(path).names
        if "item" in columns and "item_id" not in columns:
            return _augment_pairs(path, pd.read_parquet(path), item_ids)
    frame = read_query_file(path)
    kept = frame["kept"].astype(bool) if "kept" in frame else True
    source = frame["source"].astype(str) if "source" in frame else path.stem
    return pd.DataFrame(
        {"query": frame["query"], "item_id": frame["item_id"], "source": source, "kept": kept}
    )


def _augment_pairs(path: Path, frame: pd.DataFrame, item_ids: np.ndarray) -> pd.DataFrame:
    if "query" not in frame and "phrase" in frame:  # `-s llm-expand`: shopper words per item
        frame = frame.rename(columns={"phrase": "query"})
    missing = [c for c in ("query", "item", "kept") if c not in frame]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} of a `shopaug augment` query file")
    rows = frame["item"].to_numpy()
    outside = np.flatnonzero((rows < 0) | (rows >= len(item_ids)))
    if len(outside):
        raise DataError(
            f"{path} row {int(outside[0])}: item {int(rows[outside[0]])} is not a row of this "
            f"catalog ({len(item_ids)} items); was the file made from other data?"
        )
    origin = frame["origin"].astype(str) if "origin" in frame else "llm"
    return pd.DataFrame(
        {
            "query": frame["query"].astype(str).str.lower().str.strip(),
            "item_id": item_ids[rows],
            "source": origin,
            "kept": frame["kept"].astype(bool).to_numpy(),
        }
    )


class Holdout(BaseModel):
    """Training pairs and validation/test cases of the known-item protocol (module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    buckets: dict[str, str]

    def sizes(self) -> dict[str, int]:
        return {
            "train_pairs": len(self.train),
            "valid_cases": len(self.valid),
            "test_cases": len(self.test),
            "test_items": int(self.test["item_id"].nunique()),
            "test_queries_dropped_by_round_trip": sum(
                v == "round-trip-dropped" for v in self.buckets.values()
            ),
        }


def item_positions(pairs: pd.DataFrame, seed: int) -> np.ndarray:
    """A number in [0, 1) per pair from a seeded hash of its item id: the same item always
    lands on the same side of a cut, and stays there as the file grows."""
    key = f"holdout{seed:09d}"[-16:]
    codes = pd.util.hash_pandas_object(pairs["item_id"].astype(str), index=False, hash_key=key)
    return codes.to_numpy() / np.float64(2**64)


def holdout_split(pairs: pd.DataFrame, share: float, seed: int = 0) -> Holdout:
    """Hold out ``share`` of the items named in ``pairs`` for test and ``share / 2`` for
    validation, by a seeded hash of the item id (stable as the file grows); training keeps the
    other items' pairs that the round-trip filter kept, the cases keep every query."""
    position = item_positions(pairs, seed)
    is_test, is_valid = position < share, (position >= share) & (position < 1.5 * share)
    kept = pairs["kept"].astype(bool) if "kept" in pairs else pd.Series(True, index=pairs.index)
    train = pairs[~is_test & ~is_valid & kept.to_numpy()]
    test = pairs[is_test][["query", "item_id"]]
    found = pairs[is_test & kept.to_numpy()]["query"]
    buckets = {q: "round-trip-dropped" for q in test["query"]}
    buckets.update({q: "round-trip-kept" for q in found})
    return Holdout(
        train=train.reset_index(drop=True),
        valid=pairs[is_valid][["query", "item_id"]].reset_index(drop=True),
        test=test.reset_index(drop=True),
        buckets=buckets,
    )


def validation_items_split(
    pairs: pd.DataFrame, share: float, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training pairs, and validation cases: the queries of ``share`` of the items, which no
    training query names, so a choice made on them (fusion, shipped system, fine-tuned or not)
    rewards what generalises to unseen items rather than what the training queries repeat.
    Training keeps only the pairs the round-trip filter kept, as :func:`holdout_split` does."""
    is_valid = item_positions(pairs, seed) < share
    names_valid = pairs["query"].isin(set(pairs.loc[is_valid, "query"]))
    kept = pairs["kept"].astype(bool).to_numpy() if "kept" in pairs else True
    train = pairs[~is_valid & ~names_valid.to_numpy() & kept]
    columns = [c for c in ("query", "item_id", "source") if c in pairs]
    valid = pairs[names_valid.to_numpy()][columns]  # every item a query names
    return train.reset_index(drop=True), valid.reset_index(drop=True)


def validation_cases(valid: pd.DataFrame, which: Literal["all", "not-template"]) -> pd.DataFrame:
    """``query, item_id`` validation rows; with ``not-template``, those of the other sources
    when there are any (see ``SearchBenchConfig.valid_queries``)."""
    if which == "not-template" and "source" in valid:
        others = valid["source"] != "template"
        if others.any():
            valid = valid[others]
    return valid[["query", "item_id"]].reset_index(drop=True)


def query_buckets(log: pd.DataFrame) -> dict[str, str]:
    """head / torso / tail of each query by its count in ``log`` (:func:`traffic_buckets`)."""
    return traffic_buckets(log["query"].value_counts())


def traffic_buckets(searches: pd.Series) -> dict[str, str]:
    """head / torso / tail of each query (the index) by its ``searches``: sorted by searches, the
    queries covering the first third of the traffic are head, the next third torso, the rest
    tail. Queries never searched (0) are tail."""
    counts = searches[searches > 0].sort_values(ascending=False, kind="stable")
    labels = np.array([], dtype=object)
    if len(counts):
        share = counts.cumsum().to_numpy() / counts.sum()
        labels = np.where(share <= 1 / 3, "head", np.where(share <= 2 / 3, "torso", "tail"))
        labels[0] = "head"
    out = {str(q): "tail" for q in searches.index}
    out.update(zip(map(str, counts.index), labels.tolist(), strict=True))
    return out


def normalised_queries(log: pd.DataFrame) -> pd.DataFrame:
    """The log with each query as the benchmark compares them: lowercased and stripped."""
    return log.assign(query=log["query"].astype(str).str.lower().str.strip())


def traffic_slices(
    config: SearchBenchConfig, log: pd.DataFrame | None, test: pd.DataFrame
) -> tuple[dict[str, str] | None, str]:
    """The head/torso/tail label of each test query by its traffic, and where the traffic was
    read (saved as ``data.slices``).

    Without a query file the log's rows per query are the traffic. A query file's own
    ``frequency`` comes next; without one, the log's rows for each file query (lowercased and
    stripped, as log queries are compared). With neither there is no traffic to slice by:
    None, and the results keep the ``all`` slice only, since a file's rows per query count its
    relevant items and would pass a query with many of them for a popular one.
    """
    if config.queries is None and log is not None:
        return query_buckets(normalised_queries(log)), "query log: searches per query"
    if FREQUENCY in test:
        searches = pd.to_numeric(test[FREQUENCY]).groupby(test["query"]).first()
        return traffic_buckets(searches), f"{config.queries}: {FREQUENCY} column"
    if log is not None and not log.empty:
        counts = normalised_queries(log)["query"].value_counts()
        keys = pd.Series(test["query"].unique())
        searches = counts.reindex(keys.str.lower().str.strip()).fillna(0)
        searches.index = keys
        return traffic_buckets(searches), "query log: searches per query (absent from it: tail)"
    reason = (
        f"none: {config.queries} has no {FREQUENCY} column and the shop has no query log, so "
        "there is no query traffic to slice head/torso/tail by (its rows per query are relevant "
        "items); only the all slice is reported"
    )
    logger.warning("search bench slices: %s", reason)
    return None, reason


# --- scoring ------------------------------------------------------------------------------------


def score_system(
    engine: SearchEngine, cases: pd.DataFrame, mode: Mode, depth: int = max(KS)
) -> dict[str, Any]:
    """Per-query metrics (aligned with ``cases``' sorted distinct queries) and latencies."""
    queries = sorted(cases["query"].unique())
    if mode != "bm25":
        engine.query_encoder.clear()  # every system pays for encoding its queries
    rows, seconds = [], []
    for query in queries:
        started = time.perf_counter()
        ranked = engine.rank(query, depth, mode=mode)
        seconds.append(time.perf_counter() - started)
        ids = engine.item_ids(ranked)
        rows += [(query, item, rank) for rank, item in enumerate(ids, start=1)]
    pred = pd.DataFrame(rows, columns=["user_id", "item_id", "rank"])
    truth = pd.DataFrame({"user_id": cases["query"], "item_id": cases["item_id"].astype(str)})
    result = list_metrics_per_user(pred, truth, KS, pred_name="search", truth_name="queries")
    order = np.argsort(result.users)
    if list(np.asarray(result.users)[order]) != queries:
        raise RuntimeError("per-query metrics are not aligned with the test queries")
    values = {m: result.values[m][order] for m in METRICS}
    return {"queries": queries, "values": values, "seconds": np.asarray(seconds)}


def summarise(scored: dict[str, Any], buckets: dict[str, str] | None, n_resamples: int) -> dict:
    """Mean [95% CI] of every metric, overall and per traffic bucket, and latency."""
    out: dict[str, Any] = {"metrics": {}, "latency_ms": _latency(scored["seconds"])}
    for name, mask in _slices(scored["queries"], buckets):
        out["metrics"][name] = {
            m: {**_ci(scored["values"][m][mask], n_resamples), "n": int(mask.sum())}
            for m in METRICS
        }
    return out


def _slices(queries: list[str], buckets: dict[str, str] | None) -> list[tuple[str, np.ndarray]]:
    """``all`` and every non-empty slice: head/torso/tail first (a query the log lacks is tail),
    then any other labels (the holdout protocol's round-trip verdicts) in name order; ``all``
    alone when there are no buckets (no traffic known, :func:`traffic_slices`)."""
    if buckets is None:
        return [("all", np.ones(len(queries), bool))]
    labels = np.array([buckets.get(q, "tail") for q in queries], dtype=object)
    present = set(labels.tolist())
    names = [b for b in BUCKETS if b in present] + sorted(present - set(BUCKETS))
    return [("all", np.ones(len(labels), bool))] + [(n, labels == n) for n in names]


def _ci(values: np.ndarray, n_resamples: int) -> dict[str, Any]:
    ci = bootstrap_mean_ci(values, n_resamples)
    return {"mean": ci.mean, "ci": [ci.ci_low, ci.ci_high]}


def _latency(seconds: np.ndarray) -> dict[str, float]:
    ms = seconds * 1000
    return {"median": float(np.median(ms)), "p99": float(np.quantile(ms, 0.99))}


def compare(
    a: str, b: str, scored: dict[str, dict], buckets: dict[str, str] | None, n: int
) -> list:
    """Paired bootstrap of ``a - b`` per metric, overall and per bucket."""
    out = []
    for name, mask in _slices(scored[a]["queries"], buckets):
        for metric in METRICS:
            test = paired_bootstrap(
                scored[a]["values"][metric][mask], scored[b]["values"][metric][mask], n
            )
            out.append({"a": a, "b": b, "slice": name, "metric": metric, **test.to_dict()})
    return out


# --- the benchmark --------------------------------------------------------------------------------


def run_search_benchmark(
    config: SearchBenchConfig,
    on_stage: StageCallback | None = None,
    on_shipped: Callable[[SearchEngine], None] | None = None,
) -> dict[str, Any]:
    """Run every regime and mode; returns config, data sizes, results and comparisons.

    ``on_shipped`` receives the engine of the shipped system (its encoder, fusion and mode, on
    the catalog as benchmarked), e.g. to save it as the index a shop serves."""
    import torch

    from shopaug.workflow import load_dataset

    # latencies are per query on one thread (torch's default spins threads on a shared machine)
    torch.set_num_threads(config.finetune.threads)
    say = notifier(on_stage)
    dataset = load_dataset(config.data, config.events, config.work_dir, on_stage)
    catalog = dataset.items.assign(**dict.fromkeys(config.blank_fields, ""))
    dataset = replace(dataset, items=catalog)  # synthetic queries see the same sparse catalog
    synthetic, holdout = None, None
    if config.holdout_items is None:
        train, valid, test = _periods(config, dataset.queries)
        buckets, slices = traffic_slices(config, dataset.queries, test)
        if config.queries is not None:  # all test: validation comes from held-out items
            say("synthetic queries", 0.01)
            synthetic, valid = validation_items_split(
                _synthetic_pairs(config, dataset), config.valid_items, config.finetune.seed
            )
            valid = validation_cases(valid, config.valid_queries)
            valid, _ = without_generic_queries(valid, config.finetune.max_items_per_query)
    else:
        say("synthetic queries", 0.01)
        holdout = holdout_split(
            _synthetic_pairs(config, dataset), config.holdout_items, config.finetune.seed
        )
        synthetic, valid, test = holdout.train, holdout.valid, holdout.test
        train, buckets = valid.iloc[:0], holdout.buckets
        slices = "holdout: the round-trip filter's verdict on each test query (no traffic)"
    known = test["item_id"].astype(str).isin(set(catalog["item_id"].astype(str)))
    test = test[known]  # a query file may name items the catalog lacks: counted, not scored
    if test.empty:
        raise DataError("no test queries whose items are in the catalog")
    if "real+synthetic" in config.regimes and train.empty:
        raise DataError("regime real+synthetic needs a query log with a training period")
    say("BM25", 0.02)
    bm25 = SearchEngine.build(catalog, config.search.model_copy(update={"mode": "bm25"}))
    scored = {"bm25": score_system(bm25, test, "bm25")}
    expanded, expansion = _expanded_catalog(config, catalog), {}
    if expanded is not None:
        expansion = {**DocumentExpansion.coverage(expanded), **_test_in_expansion(test, expanded)}
        scored["bm25:expanded"] = score_system(
            SearchEngine.build(expanded, bm25.config), test, "bm25"
        )
    runs: dict[str, dict[str, Any]] = {}
    engines: dict[str, SearchEngine] = {}
    on_valid: dict[str, float] = {}
    share = 0.9 / len(config.regimes)
    for i, regime in enumerate(config.regimes):

        def progress(stage: str, fraction: float, i: int = i, regime: str = regime) -> None:
            say(f"{regime}: {stage}", 0.05 + share * (i + fraction))

        pairs = None
        if regime != "zero-shot":
            if synthetic is None:
                progress("synthetic queries", 0.0)
                synthetic = _synthetic_pairs(config, dataset)
            pairs = (
                synthetic
                if regime == "synthetic"
                else _with_real(synthetic, train, config.finetune.seed)
            )
        work = config.work_dir / f"search-{dataset.name}" / regime
        engine, runs[regime] = _regime_engine(config, catalog, bm25, pairs, valid, work, progress)
        engines[regime] = engine
        for mode in ("dense", "hybrid"):
            scored[f"{mode}:{regime}"] = score_system(engine, test, mode)
        if expanded is not None:  # same encoder, vectors and fusion; expanded keyword side
            twin = SearchEngine.build(
                expanded, engine.config, encoder=engine.encoder, item_vectors=engine.dense.vectors
            )
            scored[f"hybrid:{regime}:expanded"] = score_system(twin, test, "hybrid")
        if not valid.empty:  # hybrid's was scored when its fusion was chosen
            on_valid[f"dense:{regime}"] = _validation_ndcg(engine, valid, "dense")
            on_valid[f"hybrid:{regime}"] = runs[regime]["fusion"]["validation_ndcg@10"]
    shipped = ship(on_valid)
    if shipped is not None:
        scored["shipped"] = scored[shipped["system"]]
        if on_shipped is not None:
            mode, regime = shipped["system"].split(":")
            chosen = engines[regime]
            chosen.config = chosen.config.model_copy(update={"mode": mode})
            say("saving the shipped index", 0.96)
            on_shipped(chosen)
    say("statistics", 0.97)
    return {
        "config": config.model_dump(mode="json"),
        "data": {
            "items": len(catalog),
            "log_rows": {"train": len(train), "valid": len(valid), "test": len(test)},
            "test_queries": int(test["query"].nunique()),
            "test_rows_unknown_items": int((~known).sum()),
            "synthetic_pairs": 0 if synthetic is None else len(synthetic),
            **expansion,
            "slices": slices,
            **({} if holdout is None else {"holdout": holdout.sizes()}),
        },
        "regimes": runs,
        "shipped": shipped,
        "results": {name: summarise(s, buckets, config.n_resamples) for name, s in scored.items()},
        "comparisons": _comparisons(scored, buckets, config.n_resamples),
    }


def _regime_engine(
    config: SearchBenchConfig,
    catalog: pd.DataFrame,
    bm25: SearchEngine,
    pairs: pd.DataFrame | None,
    valid: pd.DataFrame,
    work: Path,
    progress: StageCallback,
) -> tuple[SearchEngine, dict[str, Any]]:
    """The engine of one regime: fine-tuned on ``pairs`` (pretrained if None), its fusion
    chosen on validation queries."""
    encoder_dir, generic = None, 0
    if pairs is not None:
        triples = training_triples(pairs, bm25, config.finetune, progress)
        generic = triples.attrs["generic_queries_dropped"]
        score = _checkpoint_score(config, catalog, valid)
        encoder_dir = fine_tune(triples, work, config.finetune, progress, score)
    progress("encoding the catalog", 0.8)
    encoder = item_text_encoder(config.search, encoder_dir)
    engine = SearchEngine.build(catalog, config.search, encoder=encoder)
    fusion = _choose_fusion(engine, valid)
    engine.config = engine.config.model_copy(
        update={k: v for k, v in fusion.items() if k in ("fusion", "dense_weight")}
    )
    info = {
        "encoder": str(encoder_dir) if encoder_dir else "pretrained",
        "training_pairs": 0 if pairs is None else len(pairs),
        "generic_queries_dropped": generic,
        "fusion": fusion,
    }
    if encoder_dir is not None:
        info["training"] = training_record(encoder_dir)
    return engine, info


def _checkpoint_score(
    config: SearchBenchConfig, catalog: pd.DataFrame, valid: pd.DataFrame
) -> CheckpointScore | None:
    """Dense validation nDCG@10 of a fine-tuning checkpoint, over the whole catalog: the
    queries of held-out items, so the step chosen is the one that generalises to items the
    training queries never named. None without validation queries (the last step is kept)."""
    if valid.empty:
        return None
    search = config.search.model_copy(update={"mode": "dense", "query_backend": "torch"})

    def score(folder: Path) -> float:
        encoder = TextEncoder(
            folder,
            backend=search.item_backend,
            max_length=search.item_max_length,
            cache_dir=folder / "vectors",  # removed with the checkpoint
        )
        return _validation_ndcg(SearchEngine.build(catalog, search, encoder), valid, "dense")

    return score


def _validation_ndcg(engine: SearchEngine, valid: pd.DataFrame, mode: str) -> float:
    return float(score_system(engine, valid, mode, depth=10)["values"]["ndcg@10"].mean())


def ship(on_valid: dict[str, float]) -> dict[str, Any] | None:
    """The system a shop should serve: the best on validation (never on test), with the reason.

    This is the guard against a fine-tune or a fusion that hurts: when validation says the
    fine-tuned encoder, or hybrid, is worse than zero-shot dense, zero-shot dense is shipped.
    """
    if not on_valid:
        return None
    best = max(on_valid, key=lambda name: on_valid[name])
    baseline = on_valid.get("dense:zero-shot")
    beaten = [n for n, v in on_valid.items() if baseline is not None and v < baseline]
    reason = f"{best} has the best validation nDCG@10 ({on_valid[best]:.4f})"
    if beaten:
        reason += f"; below zero-shot dense ({baseline:.4f}) on validation: {', '.join(beaten)}"
    return {"system": best, "validation_ndcg@10": on_valid, "reason": reason}


def _comparisons(scored: dict[str, dict], buckets: dict[str, str] | None, n: int) -> list[dict]:
    """Every system against BM25, every fine-tuned system against its zero-shot twin, and the
    shipped one against zero-shot dense."""
    pairs = [(name, "bm25") for name in scored if name != "bm25"]
    if "shipped" in scored and "dense:zero-shot" in scored:
        pairs.append(("shipped", "dense:zero-shot"))
    pairs += [
        (name, name.removesuffix(":expanded")) for name in scored if name.endswith(":expanded")
    ]
    pairs += [
        (f"{mode}:{regime}", f"{mode}:zero-shot")
        for regime in ("synthetic", "real+synthetic")
        for mode in ("dense", "hybrid")
        if f"{mode}:{regime}" in scored and f"{mode}:zero-shot" in scored
    ]
    return [c for a, b in dict.fromkeys(pairs) for c in compare(a, b, scored, buckets, n)]


def _periods(
    config: SearchBenchConfig, log: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train/valid/test log rows; a user's query file is all test (no real training rows)."""
    if config.queries is not None:
        empty = pd.DataFrame(columns=["query", "item_id"])
        return empty, empty, read_query_file(config.queries)
    if log is None or log.empty:
        raise DataError(
            f"{config.data}: the shop has no query log; pass --queries FILE to evaluate on one"
        )
    return split_log(normalised_queries(log), config.test_share, config.valid_share)


def read_pairs_files(files: list[Path], catalog: pd.DataFrame) -> pd.DataFrame:
    """The pairs of every file (:func:`read_pairs_file`), item rows mapped to ``catalog``."""
    ids = catalog["item_id"].astype(str).to_numpy()
    return pd.concat([read_pairs_file(f, ids) for f in files], ignore_index=True)


def _expanded_catalog(config: SearchBenchConfig, catalog: pd.DataFrame) -> pd.DataFrame | None:
    """The catalog with its items' expansion queries, or None without expansion files. Only
    keyword search reads them, so test queries (from elsewhere) reach nothing new."""
    if not config.expansion_files:
        return None
    return config.expansion.apply(catalog, read_pairs_files(config.expansion_files, catalog))


def count_test_rows_in_expansion(test: pd.DataFrame, expanded: pd.DataFrame) -> int:
    """Test (query, item) rows whose query is written verbatim into that item's expansion: a
    sign the expansion was made from the test set, which would make the comparison worthless."""
    known = DocumentExpansion.pairs_of(expanded)
    rows = zip(test["item_id"].astype(str), normalised(test["query"]), strict=True)
    return sum((item, query) in known for item, query in rows)


def _test_in_expansion(test: pd.DataFrame, expanded: pd.DataFrame) -> dict[str, int]:
    overlap = count_test_rows_in_expansion(test, expanded)
    if overlap:
        logger.warning(
            "%d of %d test rows have their query written into their item's expansion; was "
            "the expansion made from the test queries?",
            overlap,
            len(test),
        )
    return {"test_rows_in_expansion": overlap}


def _synthetic_pairs(config: SearchBenchConfig, dataset: Any) -> pd.DataFrame:
    template = TemplateQueries(seed=config.finetune.seed)
    if config.synthetic_files:
        files = read_pairs_files(config.synthetic_files, dataset.items)
        if not config.mix_template:
            return files
        return pd.concat([files, template.generate(dataset.items)], ignore_index=True)
    if config.synthetic == "llm":
        return llm_queries(dataset.items, limit=config.llm_limit)
    return template.generate(dataset.items)


def _with_real(synthetic: pd.DataFrame, train: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Every training-period pair plus as many synthetic ones (fewer if there are fewer): a
    catalog-wide synthetic set would otherwise outnumber the real log many times over and a
    short fine-tune would barely see a real query."""
    if train.empty:
        raise DataError("real+synthetic needs a query log with a training period")
    real = train[["query", "item_id"]].astype(str).assign(source="log")
    extra = synthetic.sample(min(len(real), len(synthetic)), random_state=seed)
    return pd.concat([real, extra], ignore_index=True)


def _choose_fusion(engine: SearchEngine, valid: pd.DataFrame) -> dict[str, Any]:
    """The fusion (RRF, or score fusion at a dense weight of the grid) with the best validation
    nDCG@10; the configured one when there are no validation queries."""
    current = {"fusion": engine.config.fusion, "dense_weight": engine.config.dense_weight}
    if valid.empty:
        return current
    grid = [{"fusion": "rrf", "dense_weight": engine.config.dense_weight}] + [
        {"fusion": "score", "dense_weight": w} for w in FUSION_WEIGHTS
    ]
    scores = []
    for choice in grid:
        engine.config = engine.config.model_copy(update=choice)
        scores.append(_validation_ndcg(engine, valid, "hybrid"))
    return {**grid[int(np.argmax(scores))], "validation_ndcg@10": max(scores)}
