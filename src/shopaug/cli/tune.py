"""``shopaug tune``: choose an augmentation plan and model parameters on validation, write plan.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from shopaug.cli.app import app, console, fail, option_error
from shopaug.cli.bench import parse_params
from shopaug.data.errors import DataError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from shopaug.workflow.tune import TrialRecord, TunedPlan


@app.command("tune")
def tune_cmd(
    data: Annotated[
        Path, typer.Argument(help="Run folder of `shopaug ingest`, or an Amazon folder.")
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model to tune for.")] = "sasrec",
    protocol: Annotated[
        str, typer.Option(help="W, C, S, T, or auto (T when events have timestamps, else W).")
    ] = "auto",
    space: Annotated[
        Path | None,
        typer.Option(help="Search space YAML (default: the shipped space; copy it to widen)."),
    ] = None,
    trials: Annotated[int, typer.Option(help="Trials to fit (repeats of one are free).")] = 20,
    time_limit: Annotated[
        float | None,
        typer.Option(help="Seconds after which no new trial starts (the running one finishes)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Fixed model parameter NAME=VALUE (repeatable)."),
    ] = None,
    min_gain: Annotated[
        float, typer.Option(help="Share a plan must beat no augmentation by to be chosen.")
    ] = 0.01,
    seed: Annotated[int, typer.Option(help="Seed of the sampler, strategies and model.")] = 0,
    inner_cold_seed: Annotated[
        int, typer.Option(help="Protocol C: seed of the inner cold split trials are scored on.")
    ] = 1,
    prune: Annotated[bool, typer.Option(help="Stop trials whose validation lags.")] = True,
    out: Annotated[Path, typer.Option("--out", "-o", help="The plan file to write.")] = Path(
        "plan.yaml"
    ),
    work_dir: Annotated[Path, typer.Option(help="Where an Amazon folder is ingested.")] = Path(
        "runs/bench"
    ),
) -> None:
    """Choose an augmentation plan (and model parameters) on validation only; write plan.yaml.

    Trial 0 always trains on the real rows alone, and a plan is chosen only if it beats that.
    Train and serve the result with `shopaug train DATA --plan plan.yaml`; report its test
    figures once with `shopaug bench rec --plan plan.yaml`.
    """
    from shopaug.models import MODELS
    from shopaug.workflow.tune import SearchSpace, TuneConfig, tune

    if model not in MODELS:
        raise fail(f"--model {model!r}: unknown; known models: {', '.join(MODELS)}")
    fixed = parse_params([f"{model}.{p}" for p in param or []], [model], option="--param")
    try:
        config = TuneConfig(
            data=data,
            model=model,
            params=fixed.get(model, {}),
            protocol=protocol if protocol == "auto" else protocol.upper(),
            trials=trials,
            time_limit=time_limit,
            seed=seed,
            inner_cold_seed=inner_cold_seed,
            min_gain=min_gain,
            prune=prune,
            work_dir=work_dir,
        )
    except ValidationError as exc:
        raise option_error(exc, {"params": "--param"}) from exc
    try:
        chosen_space = SearchSpace.load(space)
        chosen_space.check(model)
    except ValueError as exc:
        raise fail(f"--space: {exc}") from exc
    try:
        with _TrialProgress(trials) as progress:
            plan = tune(config, chosen_space, progress, before_data=progress.note)
    except (DataError, ValueError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    plan.save(out)
    print_trials(plan)
    console.print(f"[bold]{plan.verdict}[/]")
    console.print(
        f"plan written to {out}; train and serve it with: shopaug train {data} --plan {out}"
    )


class _TrialProgress:
    """A bar over the trial budget whose text shows the running trial and the best so far."""

    def __init__(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress: Progress = Progress(
            TextColumn("[bold]tune[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID = self.progress.add_task("loading data", total=total)
        self.best = "best: none yet"
        self.current = ""

    def __enter__(self) -> _TrialProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def note(self, label: str) -> None:
        self.progress.update(self.task, description=label)

    def _show(self) -> None:
        self.progress.update(self.task, description=f"{self.current} | {self.best}")

    def trial_started(self, number: int, text: str) -> None:
        self.current = f"trial {number}: {text}"
        self._show()

    def validated(self, number: int, epoch: int, score: float) -> None:
        self.current = f"trial {number}: epoch {epoch}, valid {score:.4f}"
        self._show()

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        if best is not None and best.score is not None:
            self.best = f"best {best.score:.4f} (trial {best.number})"
        if record.state != "repeat":
            self.progress.advance(self.task)
            score = "" if record.score is None else f" {record.score:.4f}"
            self.progress.console.print(
                f"trial {record.number} {record.state}{score}: {record.plan_text()} "
                f"({record.seconds:.0f} s)",
                highlight=False,
            )
        self.current = f"trial {record.number} {record.state}"
        self._show()


def print_trials(plan: TunedPlan) -> None:
    """Trial, plan, score, samples kept, seconds: the chosen trial marked."""
    from rich.table import Table

    table = Table(title=f"shopaug tune {plan.model} (protocol {plan.protocol}): {plan.objective}")
    for column in ("trial", "plan", "score", "state", "samples kept", "seconds"):
        table.add_column(column, justify="left" if column == "plan" else "right")
    for record in plan.trials:
        score = "" if record.score is None else f"{record.score:.4f}"
        if record.number == plan.chosen_trial:
            score = f"[bold green]{score} *[/]"
        state = record.state if record.error is None else f"failed: {record.error}"
        table.add_row(
            str(record.number),
            record.plan_text(),
            score,
            state,
            f"{record.kept:,}",
            f"{record.seconds:.1f}",
        )
    console.print(table)
