"""The Typer application and the terminal helpers every command shares (progress, errors)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = typer.Typer(
    help="shopaug: large-model sample augmentation for e-commerce search and recommendation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

StageCallback = Callable[[str, float], None]


@contextmanager
def stage_progress(description: str) -> Iterator[StageCallback]:
    """A progress bar with rate and ETA, driven by the ``(stage, fraction)`` callbacks of stages."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=1.0)

        def update(stage: str, fraction: float) -> None:
            progress.update(task, completed=fraction, description=f"{description}: {stage}")

        yield update
        progress.update(task, completed=1.0)


def fail(message: str) -> typer.Exit:
    """Print a one-line error (no traceback) and return the exit to raise: status 2."""
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


def print_mapping(title: str, values: dict[str, object]) -> None:
    """A two-column table of name → value, numbers formatted for reading."""
    table = Table(title=title)
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            shown = str(value)
        elif isinstance(value, int):
            shown = f"{value:,}"
        else:
            shown = f"{value:.6g}"
        table.add_row(key, shown)
    console.print(table)
