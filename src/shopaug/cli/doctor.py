"""``shopaug doctor``: which optional parts work here, which are missing, and how to fix them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shopaug.cli.app import app, console, fail
from shopaug.doctor import PARTS, Finding, check_all

_STYLE = {"ok": "[green]ok[/]", "missing": "[yellow]missing[/]", "broken": "[bold red]broken[/]"}


def findings_table(findings: list[Finding]) -> Table:
    table = Table(title="shopaug doctor: each part tried in a process of its own")
    for column in ("part", "state", "what happened"):
        table.add_column(column, overflow="fold")
    table.add_column("seconds", justify="right")
    for finding in findings:
        table.add_row(
            finding.part, _STYLE[finding.status], finding.detail, f"{finding.seconds:.1f}"
        )
    return table


def print_fixes(findings: list[Finding]) -> None:
    """The fixes below the table, whole: a command is copied, so it must not be wrapped."""
    for finding in findings:
        if finding.fix:
            console.print(f"{_STYLE[finding.status]} [bold]{finding.part}[/]: ", end="")
            console.print(finding.fix, soft_wrap=True, markup=False, highlight=False)


@app.command("doctor")
def doctor_command(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help=f"Check just these parts (repeatable): {', '.join(PARTS)}.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Try each optional part (text encoder, ONNX export, FAISS, local LLM, MLflow, Ray, BM25,
    HTTP service) and print what works, what is missing and how to fix it.

    Exit status: 0 when nothing is broken (missing parts are optional), 1 when a part is
    installed but fails, 2 for a bad option.
    """
    names = only or list(PARTS)
    unknown = [name for name in names if name not in PARTS]
    if unknown:
        raise fail(f"--only: unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    with console.status("checking…") as status:
        findings = check_all(
            names, on_done=lambda f: status.update(f"checked {f.part}: {f.status}; next…")
        )
    console.print(findings_table(findings))
    print_fixes(findings)
    broken = [f.part for f in findings if f.status == "broken"]
    if broken:
        console.print(f"[bold red]broken:[/] {', '.join(broken)}")
        raise typer.Exit(code=1)
    console.print("[green]nothing broken[/]")
