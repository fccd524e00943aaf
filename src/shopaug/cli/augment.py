"""``shopaug augment``: generate and filter samples on a protocol's training split, and store them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from shopaug.cli.app import app, console, fail, option_error, protocol_option
from shopaug.cli.augment_llm import (
    augment_progress,
    is_llm_strategy,
    is_text_product,
    llm_choice,
    print_llm_summary,
    product_configs,
    run_product,
    split_aug_params,
    with_llm,
)
from shopaug.cli.bench import augment_plan, split_names
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
    llm: Annotated[
        str | None,
        typer.Option(help="LLM backend (local, openai, fake); enables the llm-* strategies."),
    ] = None,
    llm_param: Annotated[
        list[str] | None,
        typer.Option(
            help="Backend parameter KEY=VALUE, e.g. base_url=..., model=..., n_threads=2."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=0, help="Most items (or users) each LLM step handles.")
    ] = None,
) -> None:
    """Grow training samples with the strategies, filter them, and write them with provenance.

    Only the protocol's training rows are read, so the samples can be used with that protocol's
    benchmark without leaking validation or test targets. With ``--llm``, the LLM strategies can
    be chosen too: llm-cold (rows for cold items, judged by the model), llm-queries (synthetic
    queries, OUT/queries.parquet), llm-profiles (user intent profiles, OUT/profiles.parquet),
    llm-describe (descriptions for items without one, OUT/descriptions.parquet) and llm-expand
    (shopper words for sparse items, OUT/expansions.parquet; for --text-expansion).
    """
    from shopaug.models.augmented import augment_train
    from shopaug.workflow import DataSetup, prepare_training

    protocol = protocol_option(protocol)
    choice = llm_choice(llm, llm_param or [], limit)
    names = split_names(strategies)
    llm_names = [n for n in names if is_llm_strategy(n)]
    if llm_names and choice is None:
        raise fail(f"-s {llm_names[0]} needs --llm local|openai|fake")
    products = [n for n in names if is_text_product(n)]
    plan_names = [n for n in names if not is_text_product(n)]
    plan_params, product_params = split_aug_params(aug_param or [], products)
    plan = None
    if plan_names or not products:
        plan = augment_plan(",".join(plan_names), plan_params, filters, 0.5)
        assert plan is not None
        plan = with_llm(plan, choice) if choice is not None else plan
    configs = product_configs(products, product_params, choice) if choice is not None else {}
    try:
        config = DataSetup(
            data=data,
            protocol=protocol,
            encoder=encoder,
            work_dir=work_dir,
            embed_items=plan is not None,
        )
    except ValidationError as exc:
        raise option_error(exc) from exc
    folder = out or (data / "augment" if (data / "data").is_dir() else work_dir / "augment")
    llm_reports: dict[str, dict] = {}
    outcome = None
    try:
        with augment_progress(choice is not None) as (progress, batches):
            progress("loading data", 0.0)
            _, train = prepare_training(config, lambda: progress("encoding item texts", 0.2))
            if plan is not None:
                progress("generating and filtering", 0.5)
                outcome = augment_train(train, plan, seed, batches)
                llm_reports.update(outcome.summary()["details"])
            for name in products:
                progress(name, 0.8)
                assert batches is not None
                llm_reports[name] = run_product(name, configs[name], train, folder, batches)
            progress("done", 1.0)
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from exc
    summary: dict = {"protocol": config.protocol, "seed": seed}
    if plan is not None and outcome is not None:
        samples_path = outcome.samples.write(folder / "samples.parquet")
        summary |= {"plan": plan.model_dump(), **outcome.summary()}
        print_augment_summary(summary)
        console.print(f"samples: {samples_path}")
    if choice is not None:
        summary["llm"] = {"generator": choice.describe(), "steps": llm_reports}
        print_llm_summary(choice.describe(), llm_reports)
        for name in products:
            console.print(f"{name}: {llm_reports[name]['file']}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"summary: {folder / 'summary.json'}")
