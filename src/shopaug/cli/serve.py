"""``shopaug train``, ``shopaug retrain`` and ``shopaug serve``: a servable model and its service."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from shopaug.cli.app import app, console, fail, print_mapping, stage_progress
from shopaug.cli.bench import parse_params
from shopaug.data.errors import DataError


@app.command("train")
def train(
    data: Annotated[
        Path, typer.Argument(help="Run folder of `shopaug ingest`, or an Amazon folder.")
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name, e.g. content, markov.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Service run folder to create.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (repeatable).")
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="'none': fit on every event; W/C/S/T: that protocol's training rows, "
            "with its validation cases for early stopping."
        ),
    ] = "none",
    encoder: Annotated[
        str | None, typer.Option(help="Local sentence-transformers model (default: MiniLM).")
    ] = None,
    work_dir: Annotated[Path, typer.Option(help="Where an Amazon folder is ingested.")] = Path(
        "runs/bench"
    ),
    search: Annotated[bool, typer.Option(help="Build the search index into the bundle.")] = True,
) -> None:
    """Fit a model for serving and write version 1 of a service run folder."""
    from shopaug.models import MODELS
    from shopaug.serve.bundle import TrainConfig, describe, train_bundle

    if model not in MODELS:
        raise fail(f"--model {model!r}: unknown; known models: {', '.join(sorted(MODELS))}")
    for value in param or []:
        if "=" not in value or value.startswith("="):
            raise fail(f"--param {value!r}: expected NAME=VALUE, e.g. epochs=20")
    params = parse_params([f"{model}.{p}" for p in param or []], [model], option="--param")
    try:
        config = TrainConfig(
            data=data,
            model=model,
            params=params.get(model, {}),
            protocol=protocol if protocol == "none" else protocol.upper(),
            encoder=encoder,
            work_dir=work_dir,
            search=search,
        )
        with stage_progress(f"train {model}") as progress:
            path = train_bundle(config, out, on_stage=progress)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"--{first['loc'][0]} {first.get('input')!r}: {first['msg']}") from exc
    except (DataError, ValueError, TypeError) as exc:
        raise fail(str(exc)) from exc
    print_mapping(f"bundle {path}", _shown(describe(path)))
    console.print(f"serve it with: shopaug serve {out}")


@app.command("retrain")
def retrain_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Service run folder (from `shopaug train`).")],
) -> None:
    """Fold the feedback log into the next model version; running services switch to it."""
    from shopaug.serve.bundle import describe
    from shopaug.serve.retrain import retrain

    try:
        with stage_progress("retrain") as progress:
            path = retrain(run_dir, on_stage=progress)
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from exc
    print_mapping(f"bundle {path}", _shown(describe(path)))


@app.command("serve")
def serve(
    run_dir: Annotated[Path, typer.Argument(help="Service run folder (from `shopaug train`).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve recommendations, similar items, search and feedback over HTTP (docs at /docs)."""
    import uvicorn

    from shopaug.serve.app import RUN_DIR_ENV
    from shopaug.serve.bundle import RunLayout

    try:
        RunLayout(run_dir).current()
    except DataError as exc:
        raise fail(str(exc)) from exc
    os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
    metrics_dir = None
    if workers > 1:
        # Prometheus counters of all worker processes are summed from files in this folder.
        metrics_dir = tempfile.mkdtemp(prefix="shopaug-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "shopaug.serve.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _shown(manifest: dict) -> dict[str, object]:
    keep = ("version", "model", "protocol", "n_items", "n_users", "n_events", "fit_seconds")
    return {k: manifest[k] for k in keep} | {"search": manifest["search"]}
