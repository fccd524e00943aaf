"""The LLM side of ``shopaug augment``: backend options, the text products, progress and summary.

``llm-cold`` makes training rows and runs inside the augmentation plan like any strategy. The
others are text products (``shopaug.augment.TEXT_PRODUCTS``): they make text, not rows, and each
writes a table of its own to the output folder: ``llm-queries`` (``queries.parquet``),
``llm-profiles`` (``profiles.parquet``), ``llm-describe`` (``descriptions.parquet``) and
``llm-expand`` (``expansions.parquet``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shopaug.cli.app import StageCallback, console, fail, stage_progress
from shopaug.cli.bench import invalid_parameters, parse_params

if TYPE_CHECKING:
    from shopaug.augment.context import ProgressHook
    from shopaug.llm import BatchProgress
    from shopaug.models.augmented import AugmentPlan
    from shopaug.models.base import TrainData


@dataclass(frozen=True)
class LLMChoice:
    """``--llm``, ``--llm-param`` and ``--limit``: what every LLM step of the run gets."""

    backend: str
    params: dict[str, Any]
    limit: int | None

    def defaults(self) -> dict[str, Any]:
        """Parameters of an LLM step (its own ``--aug-param`` values take precedence)."""
        chosen = {"generator": self.backend, "generator_params": self.params}
        return chosen if self.limit is None else {**chosen, "limit": self.limit}

    def describe(self) -> str:
        from shopaug.augment.llm_common import shared_generator

        return shared_generator(self.backend, self.params).describe()


def llm_choice(backend: str | None, params: list[str], limit: int | None) -> LLMChoice | None:
    """The checked backend options; the generator is built now so a typo fails before loading."""
    from shopaug.augment.llm_common import shared_generator
    from shopaug.llm import GENERATORS

    if backend is None:
        if params or limit is not None:
            raise fail("--llm-param / --limit need --llm local|openai|fake")
        return None
    if backend not in GENERATORS:
        raise fail(f"--llm {backend!r}: unknown; known: {', '.join(sorted(GENERATORS))}")
    parsed = {}
    for value in params:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise fail(f"--llm-param {value!r}: expected KEY=VALUE, e.g. n_threads=2")
        parsed[key.strip()] = yaml.safe_load(raw)
    try:
        shared_generator(backend, parsed)
    except ValidationError as exc:
        raise invalid_parameters(exc) from exc
    return LLMChoice(backend, parsed, limit)


def is_text_product(name: str) -> bool:
    """Whether ``-s name`` is a text product (written to a table) rather than a plan strategy."""
    from shopaug.augment import TEXT_PRODUCTS

    return name in TEXT_PRODUCTS


def is_llm_strategy(name: str) -> bool:
    from shopaug.augment import STRATEGIES
    from shopaug.augment.llm_common import LLMOptions

    return is_text_product(name) or (
        name in STRATEGIES and issubclass(STRATEGIES[name], LLMOptions)
    )


def split_aug_params(values: list[str], products: list[str]) -> tuple[list[str], list[str]]:
    """``--aug-param`` values of the plan's strategies and filters, and those of the products."""
    mine = [v for v in values if v.partition(".")[0] in products]
    return [v for v in values if v not in mine], mine


def with_llm(plan: AugmentPlan, choice: LLMChoice) -> AugmentPlan:
    """The plan with the backend options given to its LLM strategies, checked again."""
    params = dict(plan.params)
    for name in plan.strategies:
        if is_llm_strategy(name):
            params[name] = {**choice.defaults(), **params.get(name, {})}
    updated = plan.model_copy(update={"params": params})
    try:
        updated.build_strategies()
    except ValidationError as exc:
        raise invalid_parameters(exc) from exc
    return updated


# ----------------------------------------------------------------------------------------------
# Text products
# ----------------------------------------------------------------------------------------------


def product_configs(
    names: list[str], values: list[str], choice: LLMChoice
) -> dict[str, dict[str, Any]]:
    """Each product's parameters, checked by building it (before any data is loaded)."""
    from shopaug.augment import make_text_product

    given = parse_params(values, names, option="--aug-param", models={})
    configs = {name: {**choice.defaults(), **given.get(name, {})} for name in names}
    for name, params in configs.items():
        try:
            make_text_product(name, **params)
        except ValidationError as exc:
            raise invalid_parameters(exc) from exc
    return configs


def run_product(
    name: str, params: dict[str, Any], train: TrainData, folder: Path, progress: ProgressHook
) -> dict[str, Any]:
    """Run one text product on the training split, write its table to ``folder``, and return
    its report with the file written."""
    from shopaug.augment import TextSource, make_text_product

    catalog = train.items.catalog if train.items is not None else None
    if catalog is None:
        raise ValueError(f"{name} needs the catalog's text fields")
    source = TextSource(catalog, train.sequences, train.user_index)
    run = make_text_product(name, **params).generate(source, progress)
    return {**run.report(), "file": str(run.write(folder))}


# ----------------------------------------------------------------------------------------------
# Progress and summary
# ----------------------------------------------------------------------------------------------


class BatchBars:
    """One progress bar per LLM batch: requests done, items/s, tokens/s, cache hits, failures."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, label: str, state: BatchProgress) -> None:
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(label, total=state.total, info="")
        info = (
            f"{state.done}/{state.total} · {state.items_per_s:.1f}/s · "
            f"{state.tokens_per_s:.0f} tok/s · {state.cache_hits} cached · "
            f"{state.failures} failed"
        )
        self.progress.update(self.tasks[label], completed=state.done, info=info)


@contextmanager
def augment_progress(
    llm: bool, title: str = "augment"
) -> Iterator[tuple[StageCallback, Callable[[str, BatchProgress], None] | None]]:
    """The stage bar of ``shopaug augment`` (or ``title``); with an LLM, also a bar per LLM
    batch."""
    if not llm:
        with stage_progress(title) as stage:
            yield stage, None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(title, total=1.0, info="")

        def stage(name: str, fraction: float) -> None:
            progress.update(task, completed=fraction, description=f"{title}: {name}")

        yield stage, BatchBars(progress)
        progress.update(task, completed=1.0)


def print_llm_summary(generator: str, reports: dict[str, dict[str, Any]]) -> None:
    """LLM steps as rows: requests, backend calls, cache hits, failures, speed, what came out
    (tokens and seconds are in summary.json)."""
    table = Table(title=f"LLM steps ({generator})")
    table.add_column("step", no_wrap=True)
    for column in ("requests", "calls", "cached", "failed", "tok/s"):
        table.add_column(column, justify="right")
    table.add_column("result")
    for name, report in reports.items():
        table.add_row(
            name,
            f"{report['requests']:,}",
            f"{report['calls']:,}",
            f"{report['cache_hits']:,}",
            f"{report['failures']:,}",
            f"{report['tokens_per_s']:,.0f}",
            result_line(report),
        )
    console.print(table)


def result_line(report: dict[str, Any]) -> str:
    if "pairs" in report:
        return f"{report['yes']}/{report['pairs']} yes"
    if "kept_fraction" in report:
        return f"{report['kept']}/{report['queries']} kept"
    return f"{report['written']} written"
