"""``shopaug demo``: the whole loop on the embedded demo shop, as far as the stages go."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from shopaug.cli.app import app, console, fail, print_mapping
from shopaug.cli.run import execute, export_model, read_config
from shopaug.data.dataset import Dataset
from shopaug.data.splits import make_split

if TYPE_CHECKING:
    from shopaug.pipeline import RunOutcome


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


def print_headline(outcome: RunOutcome) -> None:
    """The tuned plan and what it changed on test: MODEL+aug minus MODEL with its 95% CI."""
    if outcome.tuned is None:
        return
    tuned = outcome.tuned
    console.print(f"\n[bold]tune[/] ({tuned.model}, {tuned.objective}): {tuned.verdict}")
    if tuned.augment is None:
        return
    table = Table(title=f"test: {tuned.model}+aug minus {tuned.model}, paired, 95% bootstrap CI")
    for column in ("slice", "metric", "difference", "95% CI"):
        table.add_column(column, justify="left" if column in ("slice", "metric") else "right")
    for c in outcome.results["comparisons"]:
        if (c["a"], c["b"]) == (f"{tuned.model}+aug", tuned.model) and c["metric"] in SHOWN:
            low, high = c["ci"]
            table.add_row(
                c["slice"], c["metric"], f"{c['mean_diff']:+.4f}", f"[{low:+.4f}, {high:+.4f}]"
            )
    console.print(table)


#: Metrics of the headline table.
SHOWN = ("ndcg@10", "recall@20")


#: The shipped run configuration of the demo (``configs/demo.yaml`` links to it).
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "pipeline" / "configs" / "demo.yaml"


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
    """Run the shipped demo config (`shopaug run` over the embedded demo shop)."""
    from pydantic import ValidationError

    from shopaug.pipeline import RunConfig
    from shopaug.pipeline.config import describe_error

    base = read_config(DEMO_CONFIG)
    names = list(models or base.models)
    tuned = base.tune if base.tune is not None and base.tune.model in names else None
    try:
        config = RunConfig.model_validate(
            {
                **base.model_dump(),
                "tune": tuned.model_dump() if tuned else None,
                "out": out,
                "data": {
                    "source": "demo",
                    "shop": {"n_items": n_items, "n_users": n_users, "seed": seed},
                },
                "split": {**base.split.model_dump(), "seed": seed},
                "models": {name: base.models.get(name, {}) for name in names},
            }
        )
    except ValidationError as exc:
        raise fail(describe_error(exc)) from exc
    console.print("[bold]recommenders on protocol C[/] (15% of items held out as cold)")
    outcome = execute(config)
    service = export_model(outcome, "tuned") if outcome.tuned is not None else None
    print_headline(outcome)
    dataset = Dataset.load(outcome.data_dir)
    print_mapping("demo shop", dataset.stats())
    print_splits(dataset, seed)
    console.print(f"\n[bold green]demo finished[/] in {outcome.seconds:.1f} s")
    console.print(f"  config       : {DEMO_CONFIG} (run any variant with `shopaug run FILE`)")
    console.print(f"  source files : {out / 'source'}")
    console.print(f"  data store   : {out / 'data'}  (see `shopaug data stats {out}`)")
    console.print(f"  rejects      : {out / 'data' / 'rejects.csv'}")
    console.print(f"  results      : {out / 'results.json'}")
    console.print(f"  report       : {out / 'report' / 'report.html'}")
    if service is not None:
        console.print(f"  plan         : {out / 'plan.yaml'} (every trial's validation score)")
        console.print(f"  service      : {out / 'service'}  (`shopaug serve {out / 'service'}`)")
    console.print(f"  stage cache  : {config.cache}  (a rerun reuses every stage)")
    console.print(
        f"  tracking     : {config.tracking_uri()}  (`mlflow ui --backend-store-uri URI`)"
    )
