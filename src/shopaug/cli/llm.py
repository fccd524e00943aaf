"""``shopaug llm audit``: measure an LLM judge on answers the training rows already know."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from shopaug.cli.app import app, console, fail, option_error, protocol_option
from shopaug.cli.augment_llm import augment_progress, llm_choice
from shopaug.data.errors import DataError

llm_app = typer.Typer(
    help="The generative model's own checks: `shopaug llm audit DATA --llm local` measures the "
    "judge before any generation pays for it.",
    no_args_is_help=True,
)
app.add_typer(llm_app, name="llm")


@llm_app.command("audit")
def audit(
    data: Annotated[
        Path, typer.Argument(help="Run folder of `shopaug ingest`, or an Amazon folder.")
    ],
    llm: Annotated[str, typer.Option(help="LLM backend: local, openai or fake.")] = "local",
    llm_param: Annotated[
        list[str] | None,
        typer.Option(help="Backend parameter KEY=VALUE, e.g. base_url=..., n_threads=2."),
    ] = None,
    users: Annotated[
        int, typer.Option(help="Training rows sampled; each gives 1 positive, 2 negatives.")
    ] = 100,
    history: Annotated[int, typer.Option(help="Last titles shown to the judge.")] = 5,
    min_auc: Annotated[float, typer.Option(help="AUC a judge needs to be 'usable'.")] = 0.6,
    protocol: Annotated[str, typer.Option(help="Whose training split: W, C, S or T.")] = "W",
    seed: Annotated[int, typer.Option(help="Seed of the sampled rows and negatives.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for summary.json and judgments.parquet."),
    ] = None,
    work_dir: Annotated[Path, typer.Option(help="Where ingested Amazon data goes.")] = Path(
        "runs/bench"
    ),
) -> None:
    """Judge known pairs from the training rows: each sampled user's real next item against a
    random and a popular item they never took. Reports AUC (0.5 is chance), yes-rates,
    calibration, the best acceptance threshold, cost per judgment, and a verdict."""
    from shopaug.augment.llm_audit import AuditConfig, JudgeAudit
    from shopaug.augment.llm_common import shared_generator
    from shopaug.workflow import DataSetup, prepare_training

    protocol = protocol_option(protocol)
    choice = llm_choice(llm, llm_param or [], None)
    assert choice is not None
    try:
        config = AuditConfig(users=users, history=history, min_auc=min_auc, seed=seed)
        setup = DataSetup(data=data, protocol=protocol, work_dir=work_dir, embed_items=False)
    except ValidationError as exc:
        raise option_error(exc) from exc
    folder = out or (data / "llm-audit" if (data / "data").is_dir() else work_dir / "llm-audit")
    try:
        with augment_progress(True, "llm audit") as (progress, batches):
            progress("loading data", 0.0)
            _, train = prepare_training(setup)
            catalog = train.items.catalog if train.items is not None else None
            if catalog is None:
                raise DataError(f"{data}: the judge audit needs the catalog's text fields")
            progress("judging known pairs", 0.2)
            generator = shared_generator(choice.backend, choice.params)
            result = JudgeAudit(config).run(train.sequences, catalog, generator, batches)
            progress("done", 1.0)
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from exc
    folder.mkdir(parents=True, exist_ok=True)
    result.table.to_parquet(folder / "judgments.parquet", index=False)
    summary = {"data": str(data), "protocol": protocol, "config": config.model_dump()}
    summary |= result.summary
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    print_audit(result.summary)
    console.print(f"summary: {folder / 'summary.json'}; judgments: {folder / 'judgments.parquet'}")


def print_audit(summary: dict[str, Any]) -> None:
    """The headline figures, then the calibration table."""
    low, high = summary["auc_ci"]
    table = Table(title=f"judge audit: {summary['judge']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("judgments (failed)", f"{summary['judgments']:,} ({summary['failed']:,})"),
        ("AUC [95% CI]", f"{summary['auc']:.3f} [{low:.3f}, {high:.3f}]"),
        ("AUC vs random items", f"{summary['auc_by_negative']['random']:.3f}"),
        ("AUC vs popular items", f"{summary['auc_by_negative']['popular']:.3f}"),
        ("yes-rate: real next / negatives", _pair(summary, "yes_rate")),
        ("mean P(yes): real next / negatives", _pair(summary, "mean_p_yes")),
        ("Brier score", f"{summary['brier']:.3f}"),
        ("scored from token probabilities", f"{summary['scored_from_logprobs']:.0%}"),
        ("acceptance threshold (best Youden J)", f"{summary['threshold']:.3f}"),
        ("tokens per judgment (prompt + answer)", _tokens(summary)),
        ("seconds per judgment", f"{summary['seconds_per_judgment']:.2f}"),
        ("verdict", summary["verdict"]),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    bins = Table(title="calibration: share of real next items per P(yes) bin")
    for column in ("P(yes)", "judgments", "mean P(yes)", "real next share"):
        bins.add_column(column, justify="right")
    for row in summary["calibration"]:
        cells = (row["bin"], f"{row['judgments']:,}", f"{row['mean_p_yes']:.3f}")
        bins.add_row(*cells, f"{row['positive_share']:.3f}")
    console.print(bins)


def _pair(summary: dict[str, Any], name: str) -> str:
    return f"{summary[f'{name}_positive']:.3f} / {summary[f'{name}_negative']:.3f}"


def _tokens(summary: dict[str, Any]) -> str:
    prompt, answer = (
        summary["prompt_tokens_per_judgment"],
        summary["completion_tokens_per_judgment"],
    )
    return f"{prompt:.0f} + {answer:.0f}"
