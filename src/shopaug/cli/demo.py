"""``shopaug demo``: the whole loop on the embedded demo shop, as far as the stages go."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shopaug.cli.app import app, console, print_mapping
from shopaug.cli.bench import run_and_report
from shopaug.cli.data import run_ingest, write_demo_files
from shopaug.data.dataset import Dataset
from shopaug.data.ingest import IngestSpec
from shopaug.data.splits import make_split


def print_splits(dataset: Dataset, seed: int) -> None:
    sequences = dataset.sequences(min_length=3, collapse_repeats=True)
    table = Table(title="evaluation splits (protocols of ../shared/BENCHMARK.md)")
    columns = ("protocol", "train users", "train events", "valid cases", "test cases", "cold items")
    for column in columns:
        table.add_column(column, justify="right")
    for protocol in ("W", "C", "S"):
        summary = make_split(protocol, sequences, dataset.n_items, seed=seed).summary()
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in summary.values()))
    console.print(table)


#: The demo's line-up: baselines first (the first is what the others are compared with), then the
#: sequence model and the content-aware model that can rank items nobody has bought yet.
DEMO_MODELS = ("pop", "markov", "itemknn", "als", "sasrec", "content")
#: Few epochs keep the demo within minutes on two cores; benchmarks train to convergence.
DEMO_PARAMS = {"sasrec": {"epochs": 6}, "content": {"epochs": 6}}


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for all outputs.")] = Path(
        "runs/demo"
    ),
    n_items: Annotated[int, typer.Option("--items", help="Catalog size of the demo shop.")] = 5000,
    n_users: Annotated[int, typer.Option("--users", help="Number of shoppers.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Models to benchmark (repeatable; default: all)."),
    ] = None,
) -> None:
    """Run the loop on the embedded demo shop and say where every output went."""
    started = time.perf_counter()
    source = out / "source"
    paths = write_demo_files(source, n_items, n_users, seed)
    run_ingest(IngestSpec(**paths), out)
    dataset = Dataset.load(out)
    print_mapping("demo shop", dataset.stats())
    print_splits(dataset, seed)
    from shopaug.evaluate.benchmark import RecBenchConfig

    bench = out / "bench"
    names = list(models or DEMO_MODELS)
    config = RecBenchConfig(
        data=out,
        protocol="C",
        models=names,
        params={name: DEMO_PARAMS[name] for name in names if name in DEMO_PARAMS},
        seeds=1,
        work_dir=bench,
    )
    console.print("\n[bold]recommenders on protocol C[/] (15% of items held out as cold)")
    run_and_report(config, bench / "protocol-C.json")
    console.print(f"\n[bold green]demo finished[/] in {time.perf_counter() - started:.1f} s")
    console.print(f"  source files : {source}")
    console.print(f"  data store   : {out / 'data'}  (see `shopaug data stats {out}`)")
    console.print(f"  rejects      : {out / 'data' / 'rejects.csv'}")
    console.print(f"  benchmark    : {bench / 'protocol-C.json'}")
    console.print(f"  report       : {bench / 'protocol-C_report' / 'report.html'}")
