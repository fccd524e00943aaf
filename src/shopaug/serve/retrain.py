"""``shopaug retrain``: fold the feedback log into the next model version.

The next version's catalog is the current catalog with the logged items applied (new ones
appended, changed ones replaced: item indices of existing items never move), and its training
events are the current version's events followed by the logged ones, in log order. The model is
refit from scratch with the current version's model name, parameters and protocol, and the new
version records the log size it folded in, so a service loading it replays only what came after.
Running services pick the version up through the ``current`` pointer.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shopaug.progress import StageCallback, notifier
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
    notify = notifier(on_stage)
    layout = RunLayout(Path(run_dir))
    notify("loading the current version", 0.0)
    bundle = Bundle.load(layout.version_dir(layout.current()))
    items, events, offset = fold_log(bundle, FeedbackLog(layout.log_path))
    dataset = dataset_from_frames(items, events, name=layout.run_dir.name)
    manifest = bundle.manifest
    notify(f"fitting {manifest.model} on {len(events):,} events", 0.2)
    model, embeddings, seconds = fit_for_serving(
        dataset, manifest.model, manifest.params, manifest.protocol, manifest.encoder
    )
    notify("writing bundle", 0.9)
    return write_bundle(
        layout,
        dataset,
        events,
        model,
        embeddings,
        {
            "model": manifest.model,
            "params": manifest.params,
            "protocol": manifest.protocol,
            "encoder": manifest.encoder,
            "source": manifest.source,
            "fit_seconds": seconds,
            "log_offset": offset,
        },
        build_search=manifest.search,
    )
