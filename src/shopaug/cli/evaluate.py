"""``shopaug evaluate``: score any system's top-k lists against held-out truth."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from shopaug.cli.app import app, console, fail, stage_progress
from shopaug.data.errors import DataError
from shopaug.evaluate.metrics import evaluate_lists

#: Ids are compared as text when read from CSV, so "007" stays "007" and matches the other file.
ID_COLUMNS = {"user_id": str, "item_id": str}


def read_table(path: Path) -> pd.DataFrame:
    """A CSV/TSV, Parquet or JSON-lines file as a DataFrame, chosen by its extension."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    name = path.name.lower().removesuffix(".gz")
    try:
        if name.endswith((".csv", ".tsv")):
            sep = "\t" if name.endswith(".tsv") else ","
            return pd.read_csv(path, sep=sep, dtype=ID_COLUMNS)
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".jsonl", ".ndjson")):
            return pd.read_json(path, lines=True, dtype=ID_COLUMNS)
    except (ValueError, OSError) as exc:  # pandas' and pyarrow's parse errors are ValueErrors
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read it: {first_line}") from exc
    raise DataError(f"{path}: unknown file type; use .csv, .tsv, .parquet or .jsonl")


def print_metrics(result: dict, ks: list[int]) -> None:
    """One row per metric family, one column per cut-off; MRR has no cut-off."""
    metrics = result["metrics"]
    table = Table(title=f"top-k accuracy over {result['n_users']:,} users")
    table.add_column("metric")
    for k in ks:
        table.add_column(f"@{k}", justify="right")
    for family in ("recall", "ndcg", "precision", "hit"):
        table.add_row(family, *(f"{metrics[f'{family}@{k}']:.4f}" for k in ks))
    table.add_row("mrr", f"{metrics['mrr']:.4f}", *([""] * (len(ks) - 1)))
    console.print(table)
    console.print(
        f"users without predictions: {result['n_users_without_predictions']:,}   "
        f"predicted users not in truth (ignored): {result['n_pred_users_not_in_truth']:,}"
    )


@app.command("evaluate")
def evaluate_command(
    pred: Annotated[
        Path,
        typer.Option(help="Ranked lists: user_id, item_id, rank (1 = best). CSV/Parquet/JSONL."),
    ],
    truth: Annotated[Path, typer.Option(help="Relevant items: user_id, item_id (one per row).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file for the metrics.")],
    k: Annotated[
        list[int] | None, typer.Option("--k", help="Cut-off (repeatable); default 10, 20, 50.")
    ] = None,
) -> None:
    """Recall, NDCG, precision, hit rate at each K and MRR of any system's ranked lists.

    Users in the truth without predictions count as zeros; equal ranks keep file order. Error
    messages give the 1-based data row (the header is not counted).
    """
    ks = sorted(set(k or [10, 20, 50]))
    if ks[0] < 1:
        raise fail(f"--k {ks[0]}: a cut-off must be an integer >= 1")
    try:
        with stage_progress("evaluate") as progress:
            progress("read predictions", 0.0)
            pred_frame = read_table(pred)
            progress("read truth", 0.4)
            truth_frame = read_table(truth)
            progress("metrics", 0.6)
            result = evaluate_lists(
                pred_frame, truth_frame, ks, pred_name=str(pred), truth_name=str(truth)
            )
    except DataError as exc:
        raise fail(_one_line(str(exc))) from exc
    print_metrics(result, ks)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {**result, "ks": ks, "pred": str(pred), "truth": str(truth)}
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    console.print(f"written: {out}")


def _one_line(message: str) -> str:
    return re.sub(r"\s+", " ", message).strip()
