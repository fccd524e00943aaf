"""The Typer application and the terminal helpers every command shares (progress, errors)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, get_args

import typer
import typer.core
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from shopaug.progress import StageCallback

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _flags_without_type() -> None:
    """Typer's rich help prints a value type after every option, flags included (``--help
    <bool>``, ``--report --no-report <bool>``), though a flag takes no value; its plain help
    already skips them. Flags get no type column, as click shows them."""
    option = typer.core.TyperOption
    shown = getattr(option, "display_type_rich", None)
    if shown is None or getattr(shown, "_skips_flags", False):
        return  # a typer without the method renders flags through click, correctly

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._skips_flags = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_type()

app = typer.Typer(
    help="shopaug: large-model sample augmentation for e-commerce search and recommendation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _log_to_console() -> None:
    """Library log records (``logging.getLogger("shopaug...")``) appear above the progress bars;
    the packages themselves never print, so a library caller keeps control of its output."""
    package = logging.getLogger("shopaug")
    if not any(isinstance(h, RichHandler) for h in package.handlers):
        package.addHandler(RichHandler(console=console, show_path=False, show_time=False))
        package.setLevel(logging.INFO)


_log_to_console()


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
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # one line, however long
    return typer.Exit(code=2)


def option_error(exc: ValidationError, options: Mapping[str, str] | None = None) -> typer.Exit:
    """A config model's first error as a one-line error naming the command-line option.

    ``options`` maps field names to their options where they differ (``models`` is ``--model``);
    a rule over several fields names its options in its own message.
    """
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    if not first["loc"]:
        return fail(message)
    field = str(first["loc"][0])
    option = (options or {}).get(field, "--" + field.replace("_", "-"))
    return fail(f"{option} {first.get('input')!r}: {message}")


def protocol_option(value: str, option: str = "--protocol") -> str:
    """``value`` as a protocol letter (any case), or a one-line error listing the protocols."""
    from shopaug.data.splits import Protocol

    protocol = value.strip().upper()
    if protocol not in get_args(Protocol):
        raise fail(f"{option} {value!r}: unknown protocol; known: {', '.join(get_args(Protocol))}")
    return protocol


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
