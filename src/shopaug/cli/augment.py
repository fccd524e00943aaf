"""``shopaug augment``: generate and filter samples on a protocol's training split, and store them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shopaug.cli.app import app, console, fail, stage_progress
from shopaug.cli.bench import augment_plan
from shopaug.data.errors import DataError


def print_augment_summary(summary: dict) -> None:
    """Strategies as columns; rows: generated, speed, removed by each filter in order, kept."""
    names = list(summary["generated"])
    table = Table(title="samples by strategy and filter")
    table.add_column("stage")
    for name in names:
        table.add_column(name, justify="right")
    table.add_row("generated", *(f"{summary['generated'][n]:,}" for n in names))
    table.add_row("samples/s", *(f"{summary['samples_per_second'][n]:,.0f}" for n in names))
    for filter_name, removed in summary["removed"].items():
        by_origin = removed["by_origin"]
        table.add_row(f"- {filter_name}", *(f"{by_origin.get(n, 0):,}" for n in names))
    table.add_row("kept", *(f"{summary['kept'].get(n, 0):,}" for n in names), style="bold")
    console.print(table)
    console.print(
        f"generated events kept: {summary['kept_events']:,} "
        f"(real training events: {summary['real_events']:,})"
    )


@app.command("augment")
def augment_command(
    data: Annotated[
        Path, typer.Argument(help="Run folder of `shopaug ingest`, or an Amazon folder.")
    ],
    strategies: Annotated[
        str, typer.Option("--strategies", "-s", help="Comma-separated strategies.")
    ] = "crop,substitute,cold-neighbours",
    protocol: Annotated[
        str, typer.Option(help="Whose training split feeds the strategies: W, C, S or T.")
    ] = "W",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default: DATA/augment).")
    ] = None,
    aug_param: Annotated[
        list[str] | None,
        typer.Option("--aug-param", help="STRATEGY.NAME=VALUE or FILTER.NAME=VALUE."),
    ] = None,
    filters: Annotated[
        str | None, typer.Option(help="Comma-separated filters in order, or 'none'.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the strategies.")] = 0,
    encoder: Annotated[
        str | None, typer.Option(help="Local sentence-transformers model (default: MiniLM).")
    ] = None,
    work_dir: Annotated[Path, typer.Option(help="Where ingested Amazon data goes.")] = Path(
        "runs/bench"
    ),
) -> None:
    """Grow training samples with the strategies, filter them, and write them with provenance.

    Only the protocol's training rows are read, so the samples can be used with that protocol's
    benchmark without leaking validation or test targets.
    """
    from shopaug.evaluate.benchmark import RecBenchConfig, prepare_training
    from shopaug.models.augmented import augment_train

    plan = augment_plan(strategies, aug_param or [], filters, 0.5)
    assert plan is not None
    config = RecBenchConfig(
        data=data, protocol=protocol.upper(), models=["pop"], encoder=encoder, work_dir=work_dir
    )
    try:
        with stage_progress("augment") as progress:
            progress("loading data", 0.0)
            _, train = prepare_training(config, lambda: progress("encoding item texts", 0.2))
            progress("generating and filtering", 0.8)
            outcome = augment_train(train, plan, seed)
            progress("done", 1.0)
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from exc
    folder = out or (data / "augment" if (data / "data").is_dir() else work_dir / "augment")
    samples_path = outcome.samples.write(folder / "samples.parquet")
    summary = {
        "protocol": config.protocol,
        "seed": seed,
        "plan": plan.model_dump(),
        **outcome.summary(),
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    print_augment_summary(summary)
    console.print(f"samples: {samples_path}\nsummary: {folder / 'summary.json'}")
