"""``shopaug search`` (a quick look at results) and ``shopaug bench search`` (the comparison)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from shopaug.cli.app import app, console, fail, stage_progress
from shopaug.cli.bench import bench_app
from shopaug.data.errors import DataError

if TYPE_CHECKING:
    from shopaug.search import SearchEngine

_EM = re.compile(r"<em>(.*?)</em>")
SHOWN_FIELDS = ("title", "brand", "categories")
BENCH_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr")


def marked(value: str) -> Text:
    """A highlight string (HTML-escaped, matches in ``<em>``) as rich text, matches in bold."""
    text, cursor = Text(), 0
    for match in _EM.finditer(value):
        text.append(html.unescape(value[cursor : match.start()]))
        text.append(html.unescape(match.group(1)), style="bold yellow")
        cursor = match.end()
    text.append(html.unescape(value[cursor:]))
    return text


def open_engine(source: Path, mode: str, encoder: str | None) -> SearchEngine:
    """A saved engine folder (search.json) is loaded; a run folder is indexed now."""
    from shopaug.data.dataset import Dataset
    from shopaug.search import SearchConfig, SearchEngine

    if (source / "search.json").exists():
        return SearchEngine.load(source)
    try:
        items = Dataset.load(source).items
    except DataError as exc:
        raise fail(str(exc)) from exc
    with console.status(f"indexing {len(items):,} items ({mode})"):
        return SearchEngine.build(items, SearchConfig(mode=mode, encoder=encoder))


@app.command("search")
def search(
    source: Annotated[Path, typer.Argument(help="Run folder, or a saved search index folder.")],
    query: Annotated[str, typer.Argument(help="What to search for.")],
    k: Annotated[int, typer.Option("-k", help="Results to show.", min=1)] = 10,
    category: Annotated[str | None, typer.Option(help="Any level of the category path.")] = None,
    brand: Annotated[str | None, typer.Option(help="Exact brand (any case).")] = None,
    min_price: Annotated[float | None, typer.Option(help="Lowest price.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Highest price.")] = None,
    mode: Annotated[str, typer.Option(help="bm25, dense or hybrid.")] = "hybrid",
    encoder: Annotated[
        str | None, typer.Option(help="Local sentence-transformers model (e.g. a fine-tune).")
    ] = None,
) -> None:
    """Search a shop's catalog and show the hits with the matching words highlighted."""
    from shopaug.search import SearchFilters

    if mode not in ("bm25", "dense", "hybrid"):
        raise fail(f"--mode {mode!r}: use bm25, dense or hybrid")
    try:
        filters = SearchFilters(
            category=category, brand=brand, min_price=min_price, max_price=max_price
        )
    except ValidationError as exc:
        raise fail(exc.errors()[0]["msg"]) from exc
    engine = open_engine(source, mode, encoder)
    try:
        hits = engine.search(query, k, filters, mode=mode)  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(str(exc)) from exc
    frame = engine.table.frame.set_index("item_id")
    table = Table(title=f"{mode} search: {query!r} ({len(hits)} of {len(engine):,} items)")
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
        typer.Option(help="Test queries (CSV/Parquet/JSONL: query, item_id) instead of the log."),
    ] = None,
    regime: Annotated[
        list[str] | None,
        typer.Option(help="zero-shot, synthetic, real+synthetic (repeatable; default: all)."),
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
    holdout_items: Annotated[
        float | None,
        typer.Option(
            help="No query log: hold out this share of items; their synthetic queries are the "
            "test cases (known-item search) and no training pair names them."
        ),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Fine-tuning steps at most (CPU time).")
    ] = None,
    max_pairs: Annotated[int | None, typer.Option(help="Training pairs at most.")] = None,
    batch_size: Annotated[int, typer.Option(help="Fine-tuning batch size.")] = 32,
    epochs: Annotated[int, typer.Option(help="Fine-tuning passes over the pairs.")] = 1,
    learning_rate: Annotated[float, typer.Option(help="Fine-tuning learning rate.")] = 3e-5,
    keep_repeats: Annotated[
        bool, typer.Option(help="Train on repeated log pairs as often as they occur.")
    ] = False,
    work_dir: Annotated[Path, typer.Option(help="Where models and ingested data go.")] = Path(
        "runs/bench"
    ),
) -> None:
    """Compare BM25, dense and hybrid search, zero-shot and fine-tuned, with paired CIs."""
    from shopaug.search.evaluate import SearchBenchConfig, default_regimes, run_search_benchmark
    from shopaug.search.finetune import FineTuneConfig

    try:
        config = SearchBenchConfig(
            data=data,
            queries=queries,
            regimes=regime or default_regimes(holdout_items),
            synthetic=synthetic,
            llm_limit=llm_limit,
            synthetic_files=synthetic_file or [],
            holdout_items=holdout_items,
            finetune=FineTuneConfig(
                max_steps=max_steps,
                max_pairs=max_pairs,
                batch_size=batch_size,
                epochs=epochs,
                learning_rate=learning_rate,
                keep_repeats=keep_repeats,
            ),
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
            outcome = run_search_benchmark(config, on_stage=progress)
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from exc
    print_search_results(outcome)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(outcome, indent=2))
    console.print(f"results: {out}")


def _cell(entry: dict | None) -> str:
    if not entry:
        return "-"
    low, high = entry["ci"]
    return f"{entry['mean']:.4f} [{low:.4f}, {high:.4f}]"


def print_search_results(outcome: dict) -> None:
    """Metrics per system and bucket, latency, and the paired differences on nDCG@10."""
    data = outcome["data"]
    console.print(
        f"{data['items']:,} items; {data['test_queries']:,} test queries; "
        f"log rows train/valid/test {data['log_rows']}; synthetic pairs {data['synthetic_pairs']:,}"
    )
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
