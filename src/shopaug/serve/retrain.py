"""``shopaug retrain``: fold the feedback log into the next model version.

The next version's catalog is the current catalog with the logged items applied (new ones
appended, changed ones replaced: item indices of existing items never move), and its training
events are the current version's events followed by the logged ones, in log order. The model is
refit from scratch with the current version's model name, parameters and protocol, and the new
version records the log size it folded in, so a service loading it replays only what came after.
Running services pick the version up through the ``current`` pointer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from shopaug.serve.bundle import (
    EVENT_COLUMNS,
    Bundle,
    RunLayout,
    dataset_from_frames,
    fit_for_serving,
    write_bundle,
)
from shopaug.serve.feedback import FeedbackLog

StageCallback = Callable[[str, float], None]


def fold_log(bundle: Bundle, log: FeedbackLog) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The catalog and events of ``bundle`` with the log after its offset applied, and the log
    offset they reach."""
    records, offset = log.read(bundle.manifest.log_offset)
    items = bundle.items.copy()
    logged_items = pd.DataFrame([r.data for r in records if r.kind == "item"])
    if len(logged_items):
        logged_items = logged_items.drop_duplicates("item_id", keep="last").set_index("item_id")
        by_id = items.set_index("item_id", drop=False)
        changed = logged_items.index.intersection(by_id.index)
        columns = by_id.columns.intersection(logged_items.columns)
        by_id.loc[changed, columns] = logged_items.loc[changed, columns]
        new = logged_items.drop(index=changed).reset_index()
        items = pd.concat([by_id.reset_index(drop=True), new], ignore_index=True)
    logged_events = pd.DataFrame(
        [r.data for r in records if r.kind == "event"], columns=EVENT_COLUMNS
    )
    logged_events["timestamp"] = pd.to_datetime(logged_events["timestamp"], utc=True)
    old_events = bundle.events.copy()
    old_events["timestamp"] = pd.to_datetime(old_events["timestamp"], utc=True)
    events = pd.concat([old_events, logged_events], ignore_index=True)
    return items, events, offset


def retrain(run_dir: str | Path, on_stage: StageCallback | None = None) -> Path:
    """Fit the current version's model on its data plus the log; write and publish the next."""
    notify = on_stage or (lambda stage, fraction: None)
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
