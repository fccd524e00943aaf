"""``shopaug retrain``: fold the feedback log into the next model version.

The next version's catalog is the current catalog with the logged items applied (new ones
appended, changed ones replaced: item indices of existing items never move), and its training
events are the current version's events followed by the logged ones, in log order. The model is
refit from scratch with the current version's fit (model name, parameters, protocol and
augmentation plan: :class:`~shopaug.serve.bundle.FitSpec`), and the new version records the log
size it folded in, so a service loading it replays only what came after.
Running services pick the version up through the ``current`` pointer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shopaug.progress import StageCallback, notifier, within
from shopaug.serve.bundle import (
    EVENT_COLUMNS,
    Bundle,
    RunLayout,
    dataset_from_frames,
    fit_for_serving,
    write_bundle,
)
from shopaug.serve.catalog import upsert_items
from shopaug.serve.feedback import FeedbackLog
from shopaug.serve.gate import (
    GateConfig,
    GateDecision,
    decide,
    judge,
    record_decision,
    window_cases,
    window_start,
)
from shopaug.serve.replay import checked_entries, set_aside
from shopaug.serve.schemas import Item, LoggedEvent


def fold_log(bundle: Bundle, log: FeedbackLog) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The catalog and events of ``bundle`` with the log after its offset applied, and the log
    offset they reach.

    The log is read as every worker reads it (:func:`checked_entries`, in log order): a record a
    worker could not apply is quarantined, or already was, and left out here too, so the next
    version holds what the service served.
    """
    entries, offset = checked_entries(log, bundle.manifest.log_offset)
    known = set(bundle.items["item_id"].astype(str))
    items: list[Item] = []
    events: list[LoggedEvent] = []
    for entry in entries:
        value = entry.value
        if isinstance(value, Item):
            known.add(value.item_id)
            items.append(value)
        elif value.item_id in known:
            events.append(value)
        else:
            set_aside(log, entry.record.offset, entry.record.end, f"unknown item {value.item_id!r}")
    catalog = upsert_items(bundle.items, items).catalog if items else bundle.items.copy()
    return catalog, _events(bundle.events, events), offset


def _events(old: pd.DataFrame, logged: list[LoggedEvent]) -> pd.DataFrame:
    """The bundle's events followed by the logged ones, times as UTC timestamps.

    Logged times are canonical (:func:`~shopaug.serve.schemas.canonical_time`) once validated;
    ``format="ISO8601"`` reads any ISO precision mix all the same.
    """
    rows = [e.model_dump(mode="json", include=set(EVENT_COLUMNS)) for e in logged]
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    old = old.copy()
    old["timestamp"] = pd.to_datetime(old["timestamp"], utc=True, format="ISO8601")
    return pd.concat([old, frame], ignore_index=True)


def retrain(run_dir: str | Path, on_stage: StageCallback | None = None) -> Path:
    """Fit the current version's model on its data plus the log; write and publish the next."""
    outcome = retrain_gated(run_dir, None, on_stage)
    assert outcome.path is not None
    return outcome.path


@dataclass
class RetrainOutcome:
    """The version written (None when the gate kept the current one) and the gate's decision."""

    path: Path | None
    gate: GateDecision | None = None


def retrain_gated(
    run_dir: str | Path, gate: GateConfig | None, on_stage: StageCallback | None = None
) -> RetrainOutcome:
    """:func:`retrain`, judged first by the gate (:mod:`shopaug.serve.gate`) when ``gate`` is
    given: a candidate that is measurably worse than the current version on the most recent
    feedback is not published."""
    notify = notifier(on_stage)
    layout = RunLayout(Path(run_dir))
    notify("loading the current version", 0.0)
    bundle = Bundle.load(layout.version_dir(layout.current()))
    items, events, offset = fold_log(bundle, FeedbackLog(layout.log_path))
    manifest = bundle.manifest
    decision = None
    if gate is not None:
        decision = judge_candidate(bundle, items, events, gate, within(notify, 0.05, 0.5, "gate: "))
        record_decision(layout.run_dir, decision, gate)
        if not decision.swaps:
            return RetrainOutcome(None, decision)
    dataset = dataset_from_frames(items, events, name=layout.run_dir.name)
    notify(f"fitting {manifest.model} on {len(events):,} events", 0.5 if gate else 0.2)
    fit = fit_for_serving(dataset, manifest.spec())
    notify("writing bundle", 0.9)
    written = {
        **manifest.spec().model_dump(mode="json"),
        "source": manifest.source,
        "tuning": manifest.tuning,
        "log_offset": offset,
        "gate": decision.model_dump(mode="json") if decision else None,
    }
    path = write_bundle(layout, dataset, events, fit, written, build_search=manifest.search)
    return RetrainOutcome(path, decision)


def judge_candidate(
    bundle: Bundle,
    items: pd.DataFrame,
    events: pd.DataFrame,
    gate: GateConfig,
    on_stage: StageCallback | None = None,
) -> GateDecision:
    """Fit a candidate on everything before the feedback window and judge it against the
    current version on the window (see :mod:`shopaug.serve.gate`)."""
    notify = notifier(on_stage)
    n_old = len(bundle.events)
    start = window_start(n_old, len(events), gate.window)
    cases = window_cases(items, events, start)
    base = {
        "current_version": bundle.manifest.version,
        "metric": gate.metric,
        "cases": len(cases),
        "window_events": len(events) - start,
        "logged_events": len(events) - n_old,
    }
    if len(cases) < gate.min_cases:
        reason = (
            f"{len(cases)} events in the feedback window, fewer than {gate.min_cases}: too few "
            "to judge, current version kept (retrain without --gate to publish anyway)"
        )
        return GateDecision(decision="no-window", reason=reason, **base)
    notify(f"fitting a candidate on the {start:,} events before the window", 0.0)
    before = dataset_from_frames(items, events.iloc[:start], name="gate")
    candidate = fit_for_serving(before, bundle.manifest.spec())
    notify(f"ranking {len(cases):,} window events with both versions", 0.8)
    measured = judge(bundle.model, candidate.model, cases, candidate.embeddings, gate)
    return decide(measured, base)
