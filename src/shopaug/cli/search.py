"""``shopaug search index`` (build and save a catalog's index once), ``shopaug search`` (query it:
a quick look at results) and ``shopaug bench search`` (the comparison)."""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
import typer.core
from pydantic import ValidationError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from shopaug.cli.app import app, console, fail, print_mapping, stage_progress
from shopaug.cli.bench import bench_app
from shopaug.data.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Task

    from shopaug.encode import TextEncoder
    from shopaug.search import SearchConfig, SearchEngine
    from shopaug.search.engine import ItemsCallback

_EM = re.compile(r"<em>(.*?)</em>")
SHOWN_FIELDS = ("title", "brand", "categories")
BENCH_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr")
MODES = ("bm25", "dense", "hybrid")
INDEX_FILE = "search.json"


class QueryByDefault(typer.core.TyperGroup):
    """A command group whose first argument, when it names none of its commands, starts the
    default command: ``shopaug search SOURCE QUERY`` stays the short form of ``shopaug search
    query SOURCE QUERY`` next to ``shopaug search index``. (A SOURCE folder named ``index`` or
    ``query`` is written ``./index``.)"""

    default_command = "query"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


search_app = typer.Typer(
    cls=QueryByDefault,
    help="Product search over a catalog: `shopaug search index DATA --out DIR` builds and saves "
    "the index once; `shopaug search DIR QUERY` (short for `shopaug search query DIR QUERY`) "
    "answers from it in milliseconds.",
    no_args_is_help=True,
)
app.add_typer(search_app, name="search")


def marked(value: str) -> Text:
    """A highlight string (HTML-escaped, matches in ``<em>``) as rich text, matches in bold."""
    text, cursor = Text(), 0
    for match in _EM.finditer(value):
        text.append(html.unescape(value[cursor : match.start()]))
        text.append(html.unescape(match.group(1)), style="bold yellow")
        cursor = match.end()
    text.append(html.unescape(value[cursor:]))
    return text


# --- building and opening an index ------------------------------------------------------------


class ItemRateColumn(ProgressColumn):
    """Items per second: rich's own speed column counts bytes."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "? items/s" if speed is None else f"{speed:,.0f} items/s"
        return Text(shown, style="progress.data.speed")


@contextmanager
def encoding_progress(description: str) -> Iterator[ItemsCallback]:
    """A bar over the catalog's items with count, items/s, elapsed time and ETA: encoding is
    most of an index build (minutes for a large catalog on a CPU)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        ItemRateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


#: The catalog encoder's options, shared by the commands that encode a catalog.
ItemBackendOption = Annotated[
    str, typer.Option(help="Catalog encoding: torch, onnx or onnx-int8 (fastest).")
]
ItemMaxLengthOption = Annotated[
    int | None, typer.Option(help="Tokens of an item's text the encoder reads (default 256).")
]


def check_mode(mode: str) -> str:
    """``mode`` if it is a search mode, else a one-line error naming ``--mode``."""
    if mode not in MODES:
        raise fail(f"--mode {mode!r}: use bm25, dense or hybrid")
    return mode


def item_encoder(config: SearchConfig) -> TextEncoder:
    """The catalog's text encoder, checked before any data is read: a wrong ``--encoder`` fails
    at once, not after minutes of loading."""
    from shopaug.search.engine import item_text_encoder

    try:
        return item_text_encoder(config)
    except (FileNotFoundError, ImportError) as exc:
        option = "--encoder" if config.encoder is not None else "default encoder"
        raise fail(f"{option}: {exc}") from exc


def read_catalog(source: Path) -> pd.DataFrame:
    """The items of an ingested run folder (only the catalog table: events are not needed)."""
    from shopaug.data.store import DatasetStore

    store = DatasetStore(source)
    try:
        store.require()
        return store.read("items")
    except DataError as exc:
        raise fail(f"{exc}; or give a search index saved by `shopaug search index`") from exc


def search_config(**options: object) -> SearchConfig:
    """A :class:`SearchConfig` from CLI options, or a one-line error naming the bad option."""
    from shopaug.search import SearchConfig

    try:
        return SearchConfig(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        option = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "options"
        raise fail(f"{option} {first.get('input')!r}: {first['msg']}") from exc


def check_files(option: str, files: list[Path]) -> None:
    """Each file of a repeatable file option exists, before any work starts."""
    for path in files:
        if not path.is_file():
            raise fail(f"{option} {path}: no such file")


def expand_catalog(items: pd.DataFrame, files: list[Path]) -> pd.DataFrame:
    """``items`` with the round-trip-kept queries of ``files`` in their expansion field."""
    from shopaug.search.evaluate import read_pairs_files
    from shopaug.search.expansion import DocumentExpansion

    try:
        pairs = read_pairs_files(files, items)
    except (DataError, OSError, ValueError) as exc:
        raise fail(f"--expansion-file: {exc}") from exc
    return DocumentExpansion().apply(items, pairs)


def build_engine(items: pd.DataFrame, config: SearchConfig) -> SearchEngine:
    """Index ``items``; dense and hybrid encode the catalog under a bar with items/s and ETA."""
    from shopaug.search import SearchEngine

    if config.mode == "bm25":
        with console.status(f"indexing {len(items):,} items (bm25)"):
            return SearchEngine.build(items, config)
    encoder = item_encoder(config)
    with encoding_progress(f"encoding {len(items):,} items") as on_items:
        return SearchEngine.build(items, config, encoder=encoder, on_items=on_items)


def load_index(folder: Path) -> SearchEngine:
    """A saved index, or a one-line error naming the file that is missing or broken."""
    from shopaug.search import SearchEngine

    try:
        return SearchEngine.load(folder)
    except (OSError, ValueError) as exc:  # also JSON, Parquet and config validation errors
        raise fail(f"{folder}: not a loadable search index: {exc}") from exc


def open_engine(source: Path, mode: str | None, encoder: str | None) -> SearchEngine:
    """A saved engine folder (search.json) is loaded, nothing encoded; a run folder is indexed
    now, which is why a saved index is the way to query more than once."""
    from shopaug.search import SearchConfig

    if (source / INDEX_FILE).exists():
        engine = load_index(source)
        _same_encoder(engine, source, encoder)
        return engine
    items = read_catalog(source)
    engine = build_engine(items, SearchConfig(mode=mode or "hybrid", encoder=encoder))
    console.print(
        f"indexed {source} for this query only; build it once with `shopaug search index "
        f"{source} --out DIR` and query DIR to answer in milliseconds",
        highlight=False,
    )
    return engine


def _same_encoder(engine: SearchEngine, source: Path, encoder: str | None) -> None:
    """Queries must be encoded by the model that encoded the saved index's items."""
    if encoder is None:
        return
    saved = engine.config.encoder
    if saved is None or Path(saved).resolve() != Path(encoder).resolve():
        raise fail(
            f"--encoder {encoder!r}: {source} was built with {saved or 'the default encoder'}; "
            "queries need the same model: drop --encoder, or build an index with this one"
        )


def _writable_index_dir(out: Path, option: str = "--out") -> None:
    """``--out`` may be new, empty, or a saved index (replaced); anything else is refused, so a
    build never mixes its files into a folder of other data."""
    if not out.exists():
        return
    if not out.is_dir():
        raise fail(f"{option} {out}: is a file; give a folder for the index")
    if any(out.iterdir()) and not (out / INDEX_FILE).exists():
        raise fail(
            f"{option} {out}: folder holds other files and no {INDEX_FILE}; give a new or empty "
            "folder (a saved search index there is replaced)"
        )


def save_index(engine: SearchEngine, out: Path) -> None:
    """Write the index beside ``out`` and swap it in: an interrupted build leaves the old index
    (or none), never half of one, and a replaced index keeps no stale files."""
    out = out.absolute()
    partial = out.with_name(f".{out.name}.partial")
    previous = out.with_name(f".{out.name}.previous")
    for leftover in (partial, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    engine.save(partial, bundle_encoder=True)
    if out.exists():
        out.rename(previous)
    partial.rename(out)
    shutil.rmtree(previous, ignore_errors=True)


@search_app.command("index")
def index(
    data: Annotated[Path, typer.Argument(help="Run folder of `shopaug ingest`.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder to save the index in: new, empty, or an index to replace."
        ),
    ],
    mode: Annotated[
        str, typer.Option(help="bm25 (no encoding), dense or hybrid: what the index can serve.")
    ] = "hybrid",
    encoder: Annotated[
        str | None, typer.Option(help="Local sentence-transformers model (e.g. a fine-tune).")
    ] = None,
    item_backend: ItemBackendOption = "torch",
    item_max_length: ItemMaxLengthOption = None,
    expansion_file: Annotated[
        list[Path] | None,
        typer.Option(
            help="Synthetic queries appended to their items' keyword documents (the "
            "queries.parquet of `shopaug augment -s llm-queries` on this data, or query,item_id "
            "files; repeatable): keyword search then matches the words shoppers type."
        ),
    ] = None,
) -> None:
    """Build a catalog's search index once and save it.

    `shopaug search OUT QUERY` then loads it and answers in milliseconds, without encoding the
    catalog again; so does SearchEngine.load(OUT) in Python.
    """

    check_mode(mode)
    _writable_index_dir(out)
    check_files("--expansion-file", expansion_file or [])
    config = search_config(
        mode=mode, encoder=encoder, item_backend=item_backend, item_max_length=item_max_length
    )
    if mode != "bm25":
        item_encoder(config)  # fails now on a wrong --encoder, before the catalog is read
    started = time.perf_counter()
    items = read_catalog(data)
    if expansion_file:
        items = expand_catalog(items, expansion_file)
    engine = build_engine(items, config)
    save_index(engine, out)
    print_mapping(
        f"search index {out}",
        {
            "items": len(engine),
            "mode": engine.config.mode,
            "dense index": engine.dense.kind if engine.dense is not None else "-",
            "items expanded": int((engine.table.frame["expansion"] != "").sum()),
            "encoder": "-" if mode == "bm25" else engine.config.encoder or "default (MiniLM)",
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    console.print(f'query it with: shopaug search {out} "dog bed"', highlight=False)


@search_app.command("query")
def search(
    source: Annotated[
        Path,
        typer.Argument(
            help="Saved index of `shopaug search index` (fast), or a run folder (indexed now)."
        ),
    ],
    query: Annotated[str, typer.Argument(help="What to search for.")],
    k: Annotated[int, typer.Option("-k", help="Results to show.", min=1)] = 10,
    category: Annotated[str | None, typer.Option(help="Any level of the category path.")] = None,
    brand: Annotated[str | None, typer.Option(help="Exact brand (any case).")] = None,
    min_price: Annotated[float | None, typer.Option(help="Lowest price.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Highest price.")] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="bm25, dense or hybrid (default: the saved index's mode, else hybrid)."),
    ] = None,
    encoder: Annotated[
        str | None, typer.Option(help="Local sentence-transformers model (e.g. a fine-tune).")
    ] = None,
) -> None:
    """Search a saved index (or a run folder) and show the hits, matched words highlighted."""
    from shopaug.search import SearchFilters

    if mode is not None:
        check_mode(mode)
    try:
        filters = SearchFilters(
            category=category, brand=brand, min_price=min_price, max_price=max_price
        )
    except ValidationError as exc:
        raise fail(exc.errors()[0]["msg"]) from exc
    started = time.perf_counter()
    engine = open_engine(source, mode, encoder)
    timings = [f"opening {source}: {time.perf_counter() - started:.1f} s"]
    mode = mode or engine.config.mode
    if mode != "bm25" and engine.dense is not None:
        started = time.perf_counter()
        # Loads the model, timed apart from the search (which still encodes ``query``).
        engine.query_encoder.encode("warm up the query encoder")
        timings.append(f"query encoder: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    try:
        hits = engine.search(query, k, filters, mode=mode)  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(str(exc)) from exc
    timings.insert(0, f"search: {(time.perf_counter() - started) * 1000:.0f} ms")
    print_hits(engine, hits, mode, query, caption="; ".join(timings))


def print_hits(engine: SearchEngine, hits: list, mode: str, query: str, caption: str) -> None:
    """The hits as a table: item fields with the matched words in bold, price and score; the
    caption says how long the search took, apart from opening the index and loading the model."""
    frame = engine.table.frame.set_index("item_id")
    table = Table(
        title=f"{mode} search: {query!r} ({len(hits)} of {len(engine):,} items)", caption=caption
    )
    for column in ("#", "item_id", *SHOWN_FIELDS, "price", "score"):
        table.add_column(column, justify="right" if column in ("#", "price", "score") else "left")
    for hit in hits:
        row = frame.loc[hit.item_id]
        cells = [marked(hit.highlights.get(f, html.escape(row[f]))) for f in SHOWN_FIELDS]
        price = "-" if row["price"] != row["price"] else f"{row['price']:.2f}"
        table.add_row(str(hit.rank), hit.item_id, *cells, price, f"{hit.score:.4g}")
    console.print(table)


@bench_app.command("search")
def bench_search(
    data: Annotated[
        Path, typer.Option(help="Run folder of `shopaug ingest`, or an Amazon folder.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results JSON to write.")],
    queries: Annotated[
        Path | None,
        typer.Option(
            help="Test queries (CSV/Parquet/JSONL: query, item_id; frequency, the searches of "
            "the query, for head/torso/tail slices) instead of the log."
        ),
    ] = None,
    regime: Annotated[
        list[str] | None,
        typer.Option(
            help="zero-shot, synthetic, real+synthetic (repeatable; default: all that can run, "
            "so not real+synthetic with --queries or --holdout-items)."
        ),
    ] = None,
    synthetic: Annotated[
        str, typer.Option(help="Synthetic query source: template (item fields) or llm.")
    ] = "template",
    llm_limit: Annotated[int | None, typer.Option(help="Items sent to the LLM.")] = None,
    synthetic_file: Annotated[
        list[Path] | None,
        typer.Option(
            help="Synthetic pairs made ahead of time (queries.parquet of `shopaug augment -s "
            "llm-queries` on this data, or query,item_id files; repeatable); replaces --synthetic."
        ),
    ] = None,
    mix_template: Annotated[
        bool,
        typer.Option(help="With --synthetic-file: train on template queries as well."),
    ] = False,
    expansion_file: Annotated[
        list[Path] | None,
        typer.Option(
            help="Synthetic queries appended to their items' keyword documents (doc2query--; "
            "same shapes as --synthetic-file, repeatable): BM25 and hybrids are also scored "
            "expanded, against their plain twins."
        ),
    ] = None,
    holdout_items: Annotated[
        float | None,
        typer.Option(
            help="No query log: hold out this share of items; their synthetic queries are the "
            "test cases (known-item search) and no training pair names them."
        ),
    ] = None,
    valid_queries: Annotated[
        str,
        typer.Option(
            help="With --queries: which held-out items' queries validate: not-template (the "
            "files' queries, when there are any; template queries copy the item's own words and "
            "favour keyword-heavy fusions) or all."
        ),
    ] = "not-template",
    max_steps: Annotated[
        int | None, typer.Option(help="Fine-tuning steps at most (CPU time).")
    ] = None,
    max_pairs: Annotated[int | None, typer.Option(help="Training pairs at most.")] = None,
    batch_size: Annotated[int, typer.Option(help="Fine-tuning batch size.")] = 32,
    epochs: Annotated[int, typer.Option(help="Fine-tuning passes over the pairs.")] = 1,
    checkpoints: Annotated[
        int,
        typer.Option(
            help="Fine-tuning steps scored on validation (evenly spaced); the best is kept."
        ),
    ] = 2,
    patience: Annotated[
        int | None,
        typer.Option(help="Stop fine-tuning after this many checkpoints without a gain."),
    ] = 2,
    learning_rate: Annotated[float, typer.Option(help="Fine-tuning learning rate.")] = 3e-5,
    keep_repeats: Annotated[
        bool, typer.Option(help="Train on repeated log pairs as often as they occur.")
    ] = False,
    max_items_per_query: Annotated[
        int | None,
        typer.Option(help="Training queries naming more items are generic and dropped."),
    ] = 5,
    blank_field: Annotated[
        list[str] | None,
        typer.Option(
            help="Catalog field to empty before anything runs (categories, brand, description; "
            "repeatable): tests a shop whose metadata is sparser."
        ),
    ] = None,
    item_backend: ItemBackendOption = "torch",
    item_max_length: ItemMaxLengthOption = None,
    seed: Annotated[int, typer.Option(help="Fine-tuning and validation-split seed.")] = 0,
    work_dir: Annotated[Path, typer.Option(help="Where models and ingested data go.")] = Path(
        "runs/bench"
    ),
    ship_index: Annotated[
        Path | None,
        typer.Option(
            help="Save the shipped system (chosen on validation, its fine-tuned encoder copied "
            "in) as a search index here: `shopaug search DIR QUERY` and the service load it."
        ),
    ] = None,
) -> None:
    """Compare BM25, dense and hybrid search, zero-shot and fine-tuned, with paired CIs."""
    from shopaug.search.evaluate import SearchBenchConfig, default_regimes, run_search_benchmark
    from shopaug.search.finetune import FineTuneConfig

    check_files("--queries", [queries] if queries else [])
    check_files("--synthetic-file", synthetic_file or [])
    check_files("--expansion-file", expansion_file or [])
    if ship_index is not None:
        _writable_index_dir(ship_index, "--ship-index")
    try:
        config = SearchBenchConfig(
            data=data,
            queries=queries,
            regimes=regime or default_regimes(holdout_items, queries),
            synthetic=synthetic,
            llm_limit=llm_limit,
            synthetic_files=synthetic_file or [],
            mix_template=mix_template,
            expansion_files=expansion_file or [],
            holdout_items=holdout_items,
            valid_queries=valid_queries,
            blank_fields=blank_field or [],
            finetune=FineTuneConfig(
                seed=seed,
                max_items_per_query=max_items_per_query,
                max_steps=max_steps,
                max_pairs=max_pairs,
                batch_size=batch_size,
                epochs=epochs,
                checkpoints=checkpoints,
                patience=patience,
                learning_rate=learning_rate,
                keep_repeats=keep_repeats,
            ),
            search=search_config(item_backend=item_backend, item_max_length=item_max_length),
            work_dir=work_dir,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if not where:  # a rule over several options
            raise fail(first["msg"].removeprefix("Value error, ")) from exc
        raise fail(f"--{where} {first.get('input')!r}: {first['msg']}") from exc
    try:
        with stage_progress("bench search") as progress:
            outcome = run_search_benchmark(
                config,
                on_stage=progress,
                on_shipped=None if ship_index is None else partial(save_index, out=ship_index),
            )
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from exc
    print_search_results(outcome)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(outcome, indent=2))
    console.print(f"results: {out}")
    if ship_index is not None:
        console.print(
            f'shipped index: {ship_index}; query it with: shopaug search {ship_index} "..."'
            if outcome["shipped"] is not None
            else "no index shipped: there were no validation queries to choose a system on",
            highlight=False,
        )


def _cell(entry: dict | None) -> str:
    if not entry:
        return "-"
    low, high = entry["ci"]
    return f"{entry['mean']:.4f} [{low:.4f}, {high:.4f}]"


def print_training_curves(regimes: dict[str, dict]) -> None:
    """Each fine-tuned regime's checkpoints: step, epoch, loss and validation nDCG@10."""
    for regime, info in regimes.items():
        training = info.get("training") or {}
        if not training.get("checkpoints"):
            continue
        table = Table(title=f"fine-tuning {regime}: validation nDCG@10 (dense) per checkpoint")
        for column in ("step", "epoch", "mean loss", "validation", ""):
            table.add_column(column, justify="right")
        for point in training["checkpoints"]:
            best = "best" if point["step"] == training["best_step"] else ""
            cells = (point["step"], point["epoch"], f"{point['loss']:.4f}")
            table.add_row(*map(str, cells), f"{point['validation']:.4f}", best)
        console.print(table)
        console.print(
            f"{regime}: {training['steps_run']} of {training['steps']} steps run, "
            f"weights of step {training['best_step']} kept",
            highlight=False,
        )


def print_search_results(outcome: dict) -> None:
    """Metrics per system and bucket, latency, and the paired differences on nDCG@10."""
    data = outcome["data"]
    console.print(
        f"{data['items']:,} items; {data['test_queries']:,} test queries; "
        f"log rows train/valid/test {data['log_rows']}; synthetic pairs {data['synthetic_pairs']:,}"
    )
    if data.get("slices"):
        console.print(f"slices by traffic from: {data['slices']}", highlight=False)
    table = Table(title="search quality (mean [95% CI]) and latency")
    for column in ("system", "slice", "n", *BENCH_METRICS, "median ms"):
        table.add_column(column, justify="left" if column in ("system", "slice") else "right")
    for system, result in outcome["results"].items():
        for slice_name, metrics in result["metrics"].items():
            latency = f"{result['latency_ms']['median']:.1f}" if slice_name == "all" else ""
            n = str(next(iter(metrics.values()))["n"])
            cells = [_cell(metrics.get(m)) for m in BENCH_METRICS]
            table.add_row(system, slice_name, n, *cells, latency)
    console.print(table)
    diffs = Table(title="paired differences (a - b) on nDCG@10 over test queries, 95% bootstrap CI")
    for column in ("a", "b", "slice", "diff", "95% CI", "p"):
        diffs.add_column(column, justify="right" if column in ("diff", "p") else "left")
    for c in outcome["comparisons"]:
        if c["metric"] != "ndcg@10":
            continue
        low, high = c["ci"]
        style = "green" if low > 0 else ("red" if high < 0 else "")
        diff = f"[{style}]{c['mean_diff']:+.4f}[/]" if style else f"{c['mean_diff']:+.4f}"
        diffs.add_row(
            c["a"], c["b"], c["slice"], diff, f"[{low:+.4f}, {high:+.4f}]", f"{c['p_value']:.3g}"
        )
    console.print(diffs)
    print_training_curves(outcome.get("regimes", {}))
    shipped = outcome.get("shipped")
    if shipped:
        console.print(f"shipped: {shipped['system']}: {shipped['reason']}", highlight=False)
