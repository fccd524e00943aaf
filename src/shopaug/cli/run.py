"""``shopaug run CONFIG.yaml`` and ``shopaug compare RUN_A RUN_B``: reproducible, tracked runs."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from shopaug.cli.app import app, console, fail, stage_progress
from shopaug.cli.bench import print_comparisons, print_results
from shopaug.data.errors import DataError

if TYPE_CHECKING:
    from shopaug.pipeline import RunConfig, RunOutcome


def print_stages(outcome: RunOutcome) -> None:
    table = Table(title=f"stages of run {outcome.config.name}")
    for column in ("stage", "cache", "seconds", "key"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for stage in outcome.stages:
        cache = "[green]reused[/]" if stage.reused else "ran"
        table.add_row(stage.stage, cache, f"{stage.seconds:.1f}", stage.key)
    table.add_row("[bold]total[/]", "", f"{outcome.seconds:.1f}", "")
    console.print(table)


def exit_on_sigterm() -> None:
    """``kill PID`` raises SystemExit like Ctrl-C raises KeyboardInterrupt, so a stage being
    built removes its temporary folder on the way out instead of leaving it behind."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def execute(config: RunConfig) -> RunOutcome:
    """Run a config with a progress bar, then print results, stages and where outputs went."""
    from shopaug.pipeline import run_pipeline

    exit_on_sigterm()
    try:
        with stage_progress(f"run {config.name}") as progress:
            outcome = run_pipeline(config, on_stage=progress)
    except (DataError, ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    print_results(outcome.results["results"])
    print_comparisons(outcome.results["comparisons"])
    print_stages(outcome)
    out = config.out
    console.print(f"results : {out / 'results.json'} (per case: {out / 'per_user.parquet'})")
    if outcome.report is not None:
        console.print(f"report  : {outcome.report}")
    if outcome.tracking_run_id:
        console.print(f"mlflow  : run {outcome.tracking_run_id} at {config.tracking_uri()}")
    return outcome


def read_config(path: Path, overrides: dict | None = None) -> RunConfig:
    from shopaug.pipeline import ConfigError, load_config

    try:
        return load_config(path, overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from exc


@app.command("run")
def run_command(
    config: Annotated[
        Path, typer.Argument(help="Run configuration (YAML), e.g. configs/demo.yaml.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (overrides the config's out).")
    ] = None,
    export: Annotated[
        str | None,
        typer.Option(
            help="'best' (highest validation NDCG@10), 'tuned' (the tune section's model, with "
            "its plan) or a model label such as sasrec+aug: refit it on every event as a "
            "servable version in OUT/service."
        ),
    ] = None,
) -> None:
    """Run ingest, encode, augment, train, evaluate and report; reuse stages already done."""
    outcome = execute(read_config(config, {"out": out} if out else None))
    if export is not None:
        export_model(outcome, export)


def export_model(outcome: RunOutcome, which: str) -> Path:
    """Refit the chosen model of a finished run for serving (``shopaug.serve.export``)."""
    import shutil

    from shopaug.serve.bundle import train_bundle
    from shopaug.serve.export import export_config, pick

    results = outcome.results["results"]
    if which == "tuned":
        if outcome.tuned is None:
            raise fail("--export tuned: this run has no tune section")
        which = outcome.tuned.model + ("+aug" if outcome.tuned.augment else "")
    try:
        record = pick(results, which)
        config = export_config(record, outcome.data_dir, results)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    target = outcome.config.out / "service"
    if target.exists():
        shutil.rmtree(target)  # the run folder is rewritten by every run; so is its export
    score = config.tuning["score"] if config.tuning else None
    shown = f" (validation NDCG@10 {score:.4f})" if score is not None else ""
    console.print(f"[bold]exporting {record['model']}[/]{shown}")
    try:
        with stage_progress(f"export {record['model']}") as progress:
            path = train_bundle(config, target, on_stage=progress)
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"service : {path} (serve it with: shopaug serve {target})")
    return path


@app.command("compare")
def compare_command(
    run_a: Annotated[Path, typer.Argument(help="Run folder of `shopaug run` (a).")],
    run_b: Annotated[Path, typer.Argument(help="Run folder of `shopaug run` (b).")],
    slice_name: Annotated[
        str | None, typer.Option("--slice", help="Only this slice (all, cold, warm, ...).")
    ] = None,
) -> None:
    """Metric differences a - b per model and slice, with paired bootstrap 95% CIs."""
    from shopaug.pipeline import compare_run_folders

    try:
        rows = compare_run_folders(run_a, run_b)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from exc
    table = Table(title=f"{run_a} (a) - {run_b} (b), paired over test cases, 95% bootstrap CI")
    for column in ("model", "slice", "metric", "cases", "a", "b", "diff", "95% CI", "p"):
        table.add_column(
            column, justify="left" if column in ("model", "slice", "metric") else "right"
        )
    for row in rows:
        if slice_name and row["slice"] != slice_name:
            continue
        low, high = row["ci"]
        style = "green" if low > 0 else ("red" if high < 0 else "")
        diff = f"{row['mean_diff']:+.4f}"
        table.add_row(
            row["model"],
            row["slice"],
            row["metric"],
            f"{row['cases']:,}",
            f"{row['a']:.4f}",
            f"{row['b']:.4f}",
            f"[{style}]{diff}[/]" if style else diff,
            f"[{low:+.4f}, {high:+.4f}]",
            f"{row['p_value']:.3g}",
        )
    console.print(table)
