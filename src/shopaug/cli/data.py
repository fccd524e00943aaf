"""``shopaug ingest`` and ``shopaug data ...``: bring a shop's files in and look at them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from shopaug.cli.app import app, console, fail, option_error, print_mapping, stage_progress
from shopaug.data.dataset import Dataset
from shopaug.data.errors import DataError
from shopaug.data.ingest import IngestReport, IngestSpec, ingest

data_app = typer.Typer(help="Inspect and generate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

TABLES = ("items", "interactions", "queries")


def parse_mappings(mappings: list[str]) -> dict[str, dict[str, str]]:
    """``items.item_id=asin`` → ``{"items": {"item_id": "asin"}}``."""
    out: dict[str, dict[str, str]] = {}
    for mapping in mappings:
        target, sep, source = mapping.partition("=")
        table, dot, column = target.partition(".")
        if not sep or not dot or not source or not column:
            raise fail(
                f"--map {mapping!r}: expected TABLE.COLUMN=FILE_COLUMN, e.g. items.item_id=asin"
            )
        if table not in TABLES:
            raise fail(f"--map {mapping!r}: unknown table {table!r} ({', '.join(TABLES)})")
        out.setdefault(table, {})[column] = source
    return out


def print_ingest_report(report: IngestReport) -> None:
    table = Table(title=f"ingested into {report.run_dir}/data")
    for column in ("table", "records", "kept", "rejected", "duplicates removed"):
        table.add_column(column, justify="left" if column == "table" else "right")
    table.add_column("file")
    for t in report.tables:
        counts = (t.records, t.kept, t.rejected, t.duplicates)
        table.add_row(t.table, *(f"{c:,}" for c in counts), t.file)
    console.print(table)
    console.print(f"users: {report.n_users:,}   time: {report.seconds:.2f} s")
    for t in report.tables:
        if t.attributes:
            console.print(f"{t.table}: extra columns kept as attributes: {', '.join(t.attributes)}")
    if report.rejected:
        rejects = Path(report.run_dir) / "data" / "rejects.csv"
        console.print(
            f"[yellow]{report.rejected:,} records not kept (rejected or duplicate), each listed with its reason: {rejects}[/]"
        )


def run_ingest(spec: IngestSpec, out: Path) -> IngestReport:
    """Ingest with a progress bar; a :class:`DataError` becomes a one-line error and exit 2."""
    try:
        with stage_progress("ingest") as progress:
            report = ingest(spec, out, on_stage=progress)
    except DataError as exc:
        raise fail(str(exc)) from exc
    print_ingest_report(report)
    return report


@app.command("ingest")
def ingest_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (data goes to OUT/data).")],
    items: Annotated[
        Path | None, typer.Option(help="Catalog file (CSV, Parquet, JSONL, *.item.json).")
    ] = None,
    interactions: Annotated[Path | None, typer.Option(help="Events file.")] = None,
    queries: Annotated[Path | None, typer.Option(help="Query log (query, item_id, ...).")] = None,
    amazon: Annotated[
        Path | None, typer.Option(help="Folder with <Name>.item.json and <Name>.inter.json.")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="Rename a file column: TABLE.COLUMN=FILE_COLUMN (repeatable)."),
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV/JSONL files.")] = "utf-8",
    clean: Annotated[
        bool, typer.Option(help="Decode HTML entities, drop tags, squash spaces.")
    ] = True,
) -> None:
    """Validate, clean and store a shop's catalog, events and query log.

    Bad records never stop the run: each goes to OUT/data/rejects.csv with its line, column and
    reason. Timestamps before 1990-01-01 or more than a year ahead are rejected as implausible
    (the reason says when a number looks like micro- or nanoseconds).
    """
    options = {"rename": parse_mappings(mapping or []), "encoding": encoding, "clean_text": clean}
    try:
        if amazon is not None:
            spec = IngestSpec.amazon(amazon, **options)
        elif items is not None:
            spec = IngestSpec(items=items, interactions=interactions, queries=queries, **options)
        else:
            raise fail("give --items FILE (with --interactions / --queries) or --amazon FOLDER")
    except DataError as exc:
        raise fail(str(exc)) from exc
    except ValidationError as exc:
        raise option_error(exc, {"rename": "--map", "clean_text": "--clean"}) from exc
    run_ingest(spec, out)


@data_app.command("stats")
def stats_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `shopaug ingest`.")],
) -> None:
    """Print the size, sparsity and event mix of an ingested dataset."""
    try:
        dataset = Dataset.load(run_dir)
    except DataError as exc:
        raise fail(str(exc)) from exc
    print_mapping(f"dataset {run_dir}", dataset.stats())


def write_demo_files(
    out: Path, n_items: int, n_users: int, seed: int, file_format: str = "csv"
) -> dict[str, Path]:
    """Generate the demo shop with a progress bar and write its files to ``out``."""
    from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop

    if file_format not in ("csv", "parquet", "jsonl"):
        raise fail(f"--format {file_format!r}: choose csv, parquet or jsonl")
    try:
        config = DemoShopConfig(n_items=n_items, n_users=n_users, seed=seed)
    except ValidationError as exc:
        first = exc.errors()[0]
        option = {"n_items": "--items", "n_users": "--users"}.get(str(first["loc"][0]), "")
        raise fail(f"{option} {first['input']}: {first['msg']}") from exc
    with stage_progress("generate demo shop") as progress:
        shop = generate_demo_shop(config, progress=progress)
    return write_demo_shop(shop, out, fmt=file_format)


@data_app.command("demo-shop")
def demo_shop_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the shop's files.")],
    n_items: Annotated[int, typer.Option("--items", help="Catalog size.")] = 5000,
    n_users: Annotated[int, typer.Option("--users", help="Number of shoppers.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed, the same shop.")] = 0,
    file_format: Annotated[str, typer.Option("--format", help="csv, parquet or jsonl.")] = "csv",
) -> None:
    """Write a synthetic shop's files (the demo's data) without ingesting them."""
    for name, path in write_demo_files(out, n_items, n_users, seed, file_format).items():
        console.print(f"{name}: {path}")
