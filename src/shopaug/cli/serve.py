"""``shopaug train``, ``shopaug retrain`` and ``shopaug serve``: a servable model and a service."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from shopaug.cli.app import app, console, fail, option_error, print_mapping, stage_progress
from shopaug.cli.bench import parse_params, read_plan
from shopaug.data.errors import DataError
from shopaug.paths import process_alive

if TYPE_CHECKING:
    import uvicorn


@app.command("train")
def train(
    data: Annotated[
        Path, typer.Argument(help="Run folder of `shopaug ingest`, or an Amazon folder.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Service run folder to create.")],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model name, e.g. content, markov (or from --plan)."),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(help="plan.yaml of `shopaug tune`: its model, parameters and augmentation."),
    ] = None,
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
    """Fit a model for serving and write version 1 of a service run folder.

    With --plan, the model is trained as `shopaug tune` chose: its parameters, and its
    augmentation plan generated, filtered and mixed in as `bench rec --augment` does.
    """
    from shopaug.models import MODELS
    from shopaug.serve.bundle import TrainConfig, describe, train_bundle

    tuned = read_plan(plan) if plan is not None else None
    if tuned is not None and model is not None and model != tuned.model:
        raise fail(f"--model {model!r}: {plan} was tuned for {tuned.model!r}")
    name = model or (tuned.model if tuned else None)
    if name is None:
        raise fail("--model: missing; give a model name or --plan plan.yaml")
    if name not in MODELS:
        raise fail(f"--model {name!r}: unknown; known models: {', '.join(sorted(MODELS))}")
    for value in param or []:
        if "=" not in value or value.startswith("="):
            raise fail(f"--param {value!r}: expected NAME=VALUE, e.g. epochs=20")
    params = parse_params([f"{name}.{p}" for p in param or []], [name], option="--param")
    fields = {
        "data": data,
        "params": params.get(name, {}),
        "protocol": protocol if protocol == "none" else protocol.upper(),
        "encoder": encoder,
        "work_dir": work_dir,
        "search": search,
    }
    try:
        if tuned is not None and plan is not None:
            config = TrainConfig.from_plan(tuned, plan, **fields)
        else:
            config = TrainConfig(model=name, **fields)
        with stage_progress(f"train {name}") as progress:
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
    gate: Annotated[
        bool,
        typer.Option(
            help="Publish only if not measurably worse than the served version on the most "
            "recent feedback (a held-out time window)."
        ),
    ] = False,
    window: Annotated[
        float, typer.Option(help="--gate: share of the logged events held out (most recent).")
    ] = 0.5,
    min_cases: Annotated[
        int, typer.Option(help="--gate: fewest window events it will judge on.")
    ] = 20,
) -> None:
    """Fold the feedback log into the next model version; running services switch to it."""
    from shopaug.serve.bundle import describe
    from shopaug.serve.gate import GateConfig
    from shopaug.serve.retrain import retrain_gated

    try:
        config = GateConfig(window=window, min_cases=min_cases) if gate else None
    except ValidationError as exc:
        raise option_error(exc) from exc
    try:
        with stage_progress("retrain") as progress:
            outcome = retrain_gated(run_dir, config, on_stage=progress)
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from exc
    if outcome.gate is not None:
        print_mapping("gate", _gate_shown(outcome.gate.model_dump()))
        console.print(f"[bold]gate:[/] {outcome.gate.reason}")
    if outcome.path is None:
        console.print("no new version published; the current one keeps serving")
        return
    print_mapping(f"bundle {outcome.path}", _shown(describe(outcome.path)))


def _gate_shown(decision: dict) -> dict[str, object]:
    keep = ("decision", "cases", "current_score", "candidate_score", "mean_diff", "p_value")
    shown = {k: decision[k] for k in keep if decision.get(k) is not None}
    if decision.get("ci"):
        shown["ci"] = f"[{decision['ci'][0]:+.4f}, {decision['ci'][1]:+.4f}]"
    return shown


@app.command("serve")
def serve(
    run_dir: Annotated[Path, typer.Argument(help="Service run folder (from `shopaug train`).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve recommendations, similar items, search and feedback over HTTP (docs at /docs).

    Exits with status 3 when the service cannot start (the app fails to load), as a supervisor
    needs to see, also with several workers, where uvicorn's own master would exit with 0.
    """
    import uvicorn

    from shopaug.serve.app import RUN_DIR_ENV, STARTUP_FAILURE
    from shopaug.serve.bundle import RunLayout
    from shopaug.serve.schemas import ServeSettings

    try:
        RunLayout(run_dir).current()
        ServeSettings.load(run_dir)
    except DataError as exc:
        raise fail(str(exc)) from exc
    except ValueError as exc:  # serve.json is not JSON, or holds a bad setting
        raise fail(f"{run_dir / 'serve.json'}: {exc}") from exc
    os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
    metrics_dir = None
    if workers > 1:
        # Prometheus counters of all worker processes are summed from files in this folder.
        metrics_dir = _metrics_dir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    config = uvicorn.Config(
        "shopaug.serve.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
    try:
        started = _run(config)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if not started:
        console.print("[bold red]error:[/] the service could not start; see the log above")
        raise typer.Exit(code=STARTUP_FAILURE)


METRICS_PREFIX = "shopaug-metrics-"


def _run(config: uvicorn.Config) -> bool:
    """Serve until stopped; False when the app failed to start in a worker.

    One worker: uvicorn's server, which exits with status 3 itself on a failed start. Several:
    uvicorn's supervisor, which stops all workers when one fails to start but then returns as
    after a normal shutdown; the failed worker's exit status tells the two apart.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from shopaug.serve.app import STARTUP_FAILURE

    if config.workers == 1:
        server = uvicorn.Server(config)
        server.run()
        return server.started
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    return all(p.exitcode != STARTUP_FAILURE for p in supervisor.processes)


def _metrics_dir() -> Path:
    """A new folder for the workers' metric files, named after this process, once the folders of
    services that are gone (killed: no cleanup ran) are removed."""
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{METRICS_PREFIX}*"):
        owners = _owner_pids(folder)
        if owners and not any(process_alive(pid) for pid in owners):
            shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-", dir=root))


def _owner_pids(folder: Path) -> set[int]:
    """The processes a metrics folder belongs to: the master named in it, and the workers whose
    metric files it holds (``counter_<pid>.db``). Workers may outlive a killed master."""
    named = re.match(rf"{METRICS_PREFIX}(\d+)-", folder.name)
    pids = {int(named.group(1))} if named else set()
    for file in folder.glob("*.db"):
        worker = re.search(r"_(\d+)\.db$", file.name)
        if worker:
            pids.add(int(worker.group(1)))
    return pids


def _shown(manifest: dict) -> dict[str, object]:
    keep = ("version", "model", "protocol", "n_items", "n_users", "n_events", "fit_seconds")
    shown = {k: manifest[k] for k in keep} | {"search": manifest["search"]}
    augmentation = manifest.get("augmentation")
    if augmentation:
        shown["generated rows kept"] = sum(augmentation.get("kept", {}).values())
    if manifest.get("tuning"):
        tuning = manifest["tuning"]
        shown["validation (tuned plan)"] = tuning["score"]
        shown["validation (no augmentation)"] = tuning["baseline_score"]
    return shown
