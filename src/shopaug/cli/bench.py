"""``shopaug bench ...``: the fixed benchmark protocols of ../shared/BENCHMARK.md, end to end."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table

from shopaug.cli.app import app, console, fail, option_error, protocol_option, stage_progress
from shopaug.cli.models import ListsModels
from shopaug.data.errors import DataError

if TYPE_CHECKING:
    from shopaug.models.augmented import AugmentPlan
    from shopaug.workflow import Experiment
    from shopaug.workflow.tune import TunedPlan

bench_app = typer.Typer(help="Benchmarks on fixed protocols.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

SHOWN_METRICS = ("ndcg@10", "recall@10", "recall@20", "mrr")
#: Options of ``bench rec`` whose names differ from the ``Experiment`` field they set.
BENCH_OPTIONS = {
    "models": "--model",
    "params": "--param",
    "embed_items": "--embed",
    "encoder_backend": "--encoder-backend",
    "encoder_max_length": "--encoder-max-length",
    "text_expansion": "--text-expansion",
}


def parse_params(
    values: list[str],
    targets: list[str],
    option: str = "--param",
    models: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """``sasrec.hidden=128`` → ``{"sasrec": {"hidden": 128}}`` (values read as YAML scalars).

    The values of a target that is a model are checked against that model's parameter schema
    and coerced to the declared types now, before any data is read. ``models`` maps such targets
    (labels) to registry names; by default a target that is a registered name is that model,
    which is what ``shopaug train -m NAME -p KEY=VALUE`` passes.
    """
    out: dict[str, dict[str, Any]] = {}
    for value in values:
        target, sep, raw = value.partition("=")
        label, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise fail(f"{option} {value!r}: expected TARGET.NAME=VALUE, e.g. sasrec.hidden=128")
        if label not in targets:
            raise fail(f"{option} {value!r}: {label!r} is not among {targets}")
        out.setdefault(label, {})[key.strip()] = yaml_value(raw, option, value)
    if models is None:
        from shopaug.models import MODELS

        models = {target: target for target in targets if target in MODELS}
    return {
        label: check_params(models[label], params, label, option) if label in models else params
        for label, params in out.items()
    }


def yaml_value(raw: str, option: str, value: str) -> Any:
    """A command-line value as a YAML scalar (``2`` an int, ``true`` a bool, ``null`` None)."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        raise fail(f"{option} {value!r}: the value is not valid YAML") from None


def check_params(name: str, params: dict[str, Any], label: str, option: str) -> dict[str, Any]:
    """One model's parameters checked by its schema, or a one-line error naming the parameter
    and what it takes."""
    from shopaug.models import ParameterError, check_model_params

    try:
        return check_model_params(name, params, label)
    except ParameterError as exc:
        hint = f"; `shopaug models {name}` lists them" if exc.problem.startswith("unknown") else ""
        raise fail(f"{option} {exc}{hint}") from exc


def split_names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def augment_plan(
    strategies: str | None, params: list[str], filters: str | None, weight: float
) -> AugmentPlan | None:
    """The ``--augment`` options as a plan; names are checked with the list of known ones."""
    from shopaug.augment import STRATEGIES
    from shopaug.filter import DEFAULT_FILTERS, FILTERS
    from shopaug.models.augmented import AugmentPlan

    if not strategies:
        if params or filters:
            raise fail("--aug-param / --filters need --augment STRATEGY[,STRATEGY...]")
        return None
    names = split_names(strategies)
    chain = list(DEFAULT_FILTERS) if filters is None else split_names(filters)
    chain = [] if chain == ["none"] else chain
    for name, known, option in [(n, STRATEGIES, "--augment") for n in names] + [
        (n, FILTERS, "--filters") for n in chain
    ]:
        if name not in known:
            raise fail(f"{option} {name!r}: unknown; known: {', '.join(sorted(known))}")
    by_target = parse_params(params, names + chain, option="--aug-param", models={})
    try:
        plan = AugmentPlan(
            strategies=names,
            params={k: v for k, v in by_target.items() if k in names},
            filters=chain,
            filter_params={k: v for k, v in by_target.items() if k in chain},
            weight=weight,
        )
        plan.build_strategies()  # parameters are checked now, not an hour into the run
        plan.build_filters()
    except ValidationError as exc:
        raise invalid_parameters(exc) from exc
    return plan


def invalid_parameters(exc: ValidationError) -> typer.Exit:
    """A strategy's or filter's bad parameter as one line: ``Crop ratio = 5: Input should ...``."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return fail(f"{exc.title} {where} = {first.get('input')!r}: {first['msg']}")


def _cell(entry: dict | None) -> str:
    if not entry:
        return "-"
    low, high = entry["ci"]
    return f"{entry['mean']:.4f} [{low:.4f}, {high:.4f}]"


def print_results(results: list[dict]) -> None:
    for result in results:
        table = Table(title=f"{result['model']} on protocol {result['protocol']} (mean [95% CI])")
        table.add_column("slice")
        for metric in SHOWN_METRICS:
            table.add_column(metric, justify="right")
        for slice_name, metrics in result["metrics"].items():
            table.add_row(slice_name, *(_cell(metrics.get(m)) for m in SHOWN_METRICS))
        console.print(table)
        beyond = ", ".join(f"{k} {v:.4g}" for k, v in result["beyond"].items())
        console.print(f"  beyond accuracy: {beyond}; seconds: {result['seconds']:.1f}")


def print_comparisons(comparisons: list[dict]) -> None:
    if not comparisons:
        return
    table = Table(title="paired differences (a - b) over test users, 95% bootstrap CI")
    for column in ("a", "b", "slice", "metric", "diff", "95% CI", "p"):
        table.add_column(column, justify="right" if column in ("diff", "p") else "left")
    for c in comparisons:
        if c["metric"] not in ("ndcg@10", "recall@20"):
            continue
        low, high = c["ci"]
        style = "green" if low > 0 else ("red" if high < 0 else "")
        table.add_row(
            c["a"],
            c["b"],
            c["slice"],
            c["metric"],
            f"[{style}]{c['mean_diff']:+.4f}[/]" if style else f"{c['mean_diff']:+.4f}",
            f"[{low:+.4f}, {high:+.4f}]",
            f"{c['p_value']:.3g}",
        )
    console.print(table)


@bench_app.command("rec", cls=ListsModels)
def bench_rec(
    data: Annotated[
        Path, typer.Option(help="Run folder of `shopaug ingest`, or an Amazon folder.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results JSON to write.")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model name (see the list below), or LABEL=NAME to run a model twice with "
            "different -p LABEL.* (repeatable; the first is the baseline).",
        ),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            help="plan.yaml of `shopaug tune`: its model with its parameters, trained with and "
            "without its augmentation plan, on its protocol (test scored once)."
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="W (warm), C (cold items), S (sparse), T (time); default W or the plan's."
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Training seeds per model.")] = 3,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="MODEL.NAME=VALUE, MODEL a name or label of --model (repeatable; `shopaug "
            "models MODEL` lists its parameters).",
        ),
    ] = None,
    encoder: Annotated[
        str | None,
        typer.Option(help="Local sentence-transformers model (default: packaged MiniLM)."),
    ] = None,
    encoder_backend: Annotated[
        str, typer.Option(help="Item text encoding: torch, onnx or onnx-int8 (fastest).")
    ] = "torch",
    encoder_max_length: Annotated[
        int | None, typer.Option(help="Tokens read per item text (default: the model's, 256).")
    ] = None,
    text_expansion: Annotated[
        Path | None,
        typer.Option(
            help="expansions.parquet of `shopaug augment -s llm-expand` on this data: kept "
            "phrases are appended to item texts before encoding."
        ),
    ] = None,
    work_dir: Annotated[Path, typer.Option(help="Where ingested data and caches go.")] = Path(
        "runs/bench"
    ),
    report: Annotated[
        bool, typer.Option(help="Also write a Markdown/HTML report with plots.")
    ] = True,
    embed: Annotated[
        bool, typer.Option(help="Encode item texts (content models, diversity measure).")
    ] = True,
    augment: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated strategies, e.g. crop,substitute,cold-neighbours: every model "
            "is also trained on real + generated rows (reported as MODEL+aug)."
        ),
    ] = None,
    aug_param: Annotated[
        list[str] | None,
        typer.Option("--aug-param", help="STRATEGY.NAME=VALUE or FILTER.NAME=VALUE (repeatable)."),
    ] = None,
    filters: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated filters in order (default: the standard chain; "
            "'none' for no filter)."
        ),
    ] = None,
    aug_weight: Annotated[
        float, typer.Option(help="Weight of a generated event (a real one weighs 1).")
    ] = 0.5,
) -> None:
    """Train and test models on one protocol, over seeds, with confidence intervals."""
    from shopaug.workflow import Experiment, model_labels

    tuned = read_plan(plan) if plan is not None else None
    if tuned is not None and augment:
        raise fail("--augment: the plan file already says how to augment; give one of the two")
    models = list(model or ([tuned.model] if tuned else []))
    if not models:
        raise fail("--model: missing; give at least one model, or --plan plan.yaml")
    protocol = protocol_option(protocol or (tuned.protocol if tuned else "W"))
    try:
        labels = model_labels(models)
    except ValueError as exc:
        raise fail(f"--model {exc}") from exc
    params = parse_params(param or [], list(labels), models=labels)
    chosen = augment_plan(augment, aug_param or [], filters, aug_weight)
    if tuned is not None:
        if tuned.model not in labels:
            raise fail(f"--model: {plan} was tuned for {tuned.model!r}, which is not among them")
        params[tuned.model] = {**tuned.params, **params.get(tuned.model, {})}
        chosen = tuned.augment
        if chosen is None:
            console.print(f"[bold]{plan}:[/] {tuned.verdict}; nothing to compare it with")
    try:
        config = Experiment(
            data=data,
            protocol=protocol,
            models=models,
            seeds=seeds,
            params=params,
            encoder=encoder,
            encoder_backend=encoder_backend,
            encoder_max_length=encoder_max_length,
            text_expansion=text_expansion,
            work_dir=work_dir,
            embed_items=embed,
            augment=chosen,
        )
    except ValidationError as exc:
        raise option_error(exc, BENCH_OPTIONS) from exc
    run_and_report(config, out, report=report)


def read_plan(path: Path) -> TunedPlan:
    """A ``plan.yaml`` of ``shopaug tune``, or a one-line error naming the file."""
    from shopaug.workflow.tune import TunedPlan

    try:
        return TunedPlan.load(path)
    except ValueError as exc:
        raise fail(f"--plan {exc}") from exc


def run_and_report(config: Experiment, out: Path, report: bool = True) -> dict[str, Any]:
    """Run a recommendation benchmark with progress, print its tables, write JSON and report."""
    from shopaug.evaluate.report import write_report
    from shopaug.workflow import run_experiment, write_results

    try:
        with stage_progress(f"bench rec {config.protocol}") as progress:
            outcome = run_experiment(config, on_stage=progress)
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from exc
    print_results(outcome["results"])
    print_comparisons(outcome["comparisons"])
    path = write_results(outcome, out)
    console.print(f"results: {path}")
    if report:
        md, html = write_report(
            outcome["results"],
            out.with_suffix("").with_name(out.stem + "_report"),
            title=f"shopaug bench rec: protocol {config.protocol} on {config.data.name}",
            comparisons=outcome["comparisons"],
        )
        console.print(f"report: {html} (and {md.name})")
    return outcome
