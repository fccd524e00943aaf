"""``shopaug models [NAME]``: the registered recommenders and their parameters, from their schemas.

The table is read from each model's ``Params`` schema, the same declaration that validates
``-p MODEL.NAME=VALUE`` and a config's ``models:`` section, so what it shows is what is accepted.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
import typer.core
from rich.table import Table

from shopaug.cli.app import app, console, fail


def models_epilog() -> str:
    """The registered names and where their parameters are listed (for a command's help)."""
    from shopaug.models import MODELS

    return (
        f"Models: {', '.join(MODELS)}. `shopaug models` lists every model's parameters "
        "(type, default, range, help); `shopaug models NAME` one model's."
    )


class ListsModels(typer.core.TyperCommand):
    """A command whose help ends with the registered models.

    The names are read when help is shown, not when the command line starts: importing the
    models loads PyTorch, seconds that every other command would pay for nothing.
    """

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.epilog = models_epilog()
        super().format_help(ctx, formatter)


def _shown(value: Any) -> str:
    """A default as it is written on a command line or in YAML: ``null``, ``'cosine'``, ``5``."""
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)


def parameter_table(names: list[str]) -> Table:
    """One section per model: its parameters with type, default, allowed values and help."""
    from shopaug.models import model_class, model_param_specs

    one = len(names) == 1
    title = "parameters of " + names[0] if one else "registered models"
    caption = "set one with -p MODEL.NAME=VALUE or a config's models:"
    if not one:
        caption += "; `shopaug models NAME` adds what each parameter does"
    table = Table(title=title, caption=caption)
    for column in ("model", "parameter", "type", "default"):  # names stay whole, to copy
        table.add_column(column, no_wrap=True)
    table.add_column("allowed", overflow="fold")
    if one:  # the help text needs the width a table of every model does not have
        table.add_column("help", overflow="fold")
    for name in names:
        specs = model_param_specs(name)
        label = f"[bold]{name}[/]\n[dim]{model_class(name).__name__}[/]"
        if not specs:
            table.add_row(label, "-", "", "", "", *(("no parameters",) if one else ()))
        for i, spec in enumerate(specs):
            row = (spec.name, spec.type, _shown(spec.default), spec.allowed)
            table.add_row(label if i == 0 else "", *row, *((spec.help,) if one else ()))
        table.add_section()
    return table


@app.command("models")
def models_command(
    name: Annotated[
        str | None, typer.Argument(help="One model (default: every registered model).")
    ] = None,
) -> None:
    """List the registered models and their parameters: type, default, range or choices, help."""
    from shopaug.models import MODELS

    if name is not None and name not in MODELS:
        raise fail(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    console.print(parameter_table([name] if name else list(MODELS)))
